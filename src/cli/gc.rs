//! `aos gc`: pack and prune.

use std::time::Duration;

use aos::store::gc::{GcOptions, gc};
use serde_json::json;

use super::{CliError, Ctx, out_json, outln};

/// Pack reachable objects and prune old unreachable ones.
///
/// Writes every object reachable from refs and reflogs into one pack, removes the old packs
/// and loose files, and deletes unreachable objects older than the grace period.
#[derive(clap::Args, Debug)]
pub struct GcArgs {
    /// Grace period for unreachable objects: `now`, `never`, or a number with a unit
    /// (`s`, `m`, `h`, `d`, `w`), e.g. `2w`.
    #[arg(long, value_name = "AGE", default_value = "2w", value_parser = parse_age)]
    pub prune: Duration,
}

fn parse_age(s: &str) -> Result<Duration, String> {
    match s {
        "now" => return Ok(Duration::ZERO),
        "never" => return Ok(Duration::from_secs(u64::MAX / 4)),
        _ => {}
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not an age like 2w, 3d, 12h, now or never"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}` (use s, m, h, d or w)"
            ));
        }
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{s}` is too long"))
}

/// Runs `aos gc`.
pub fn run(ctx: &Ctx, args: &GcArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let opts = GcOptions {
        grace: args.prune,
        ..GcOptions::default()
    };
    let r = gc(&store, &opts, &ctx.progress())?;
    let printed = if ctx.json {
        out_json(&json!({
            "reachable": r.reachable,
            "pruned": r.pruned,
            "kept_recent": r.kept_recent,
            "removed_loose": r.removed_loose,
            "removed_packs": r.removed_packs,
            "removed_tmp": r.removed_tmp,
            "bytes_before": r.bytes_before,
            "bytes_after": r.bytes_after,
            "repack_skipped": r.repack_skipped,
        }))
    } else if r.repack_skipped {
        outln(&format!(
            "{} reachable objects left in place; {} pruned, {} unreachable kept (younger than the grace period); {} -> {} bytes",
            r.reachable, r.pruned, r.kept_recent, r.bytes_before, r.bytes_after
        ))
    } else {
        outln(&format!(
            "{} reachable objects packed; {} pruned, {} unreachable kept (younger than the grace period); {} -> {} bytes",
            r.reachable, r.pruned, r.kept_recent, r.bytes_before, r.bytes_after
        ))
    };
    printed?;
    if r.repack_skipped {
        return Err(CliError::user(format!(
            "the disk is full: gc could not write its new pack, so it only removed garbage that \
             needs no rewriting ({} bytes freed); run `aos gc` again once there is room",
            r.bytes_before.saturating_sub(r.bytes_after)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_age;
    use std::time::Duration;

    #[test]
    fn ages() {
        assert_eq!(parse_age("now"), Ok(Duration::ZERO));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(5400)));
        assert!(parse_age("2 weeks").is_err());
        assert!(parse_age("w").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
    }
}
