//! Where a command names its keys, for code that routes or classifies commands itself (the
//! replicated-write classifier here, the Cluster backend's router).

use redis::{Arg, Cmd};

/// A command's arguments as bytes, its name first (a cursor argument as empty).
pub fn simple_args(cmd: &Cmd) -> impl Iterator<Item = &[u8]> {
    cmd.args_iter().map(|a| match a {
        Arg::Simple(bytes) => bytes,
        _ => &[][..],
    })
}

/// A command's first key: the argument after the name, or for `EVAL`/`EVALSHA`/`FCALL` the
/// first after the key count (none when the count is 0). Commands that name no key at all
/// are the caller's to tell apart.
pub fn first_key(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = simple_args(cmd);
    let name = args.next()?;
    let scripted = [
        "EVAL",
        "EVALSHA",
        "FCALL",
        "EVAL_RO",
        "EVALSHA_RO",
        "FCALL_RO",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n.as_bytes()));
    if scripted {
        let _script = args.next()?;
        let count: usize = std::str::from_utf8(args.next()?).ok()?.parse().ok()?;
        if count == 0 {
            return None;
        }
    }
    args.next()
}
