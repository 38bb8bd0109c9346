//! `mip6-mn`: the Mobile IPv6 mobile node daemon. From a foreign link it runs IKEv1 with its
//! home agent, obtains a home address (static, DHCPv6 through the tunnel, or Mode Config) and
//! the RFC 3776 SAs (draft-devarapalli-mip6-ikev1-bootstrap). Everything is in the library
//! (`mip6_mn`, `src/lib.rs`).

use std::process::ExitCode;

fn main() -> ExitCode {
    mip6_mn::main()
}
