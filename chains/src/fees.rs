//! Fee caps: parsing the configured limits (decimal strings in gwei or native units) into
//! base units, and fitting suggested or replacement EVM fees under them.
//!
//! The rule (ADR 0007, "Fee caps"): a `max_fee_per_gas` above the per-gas cap is clamped to
//! the cap while the base fee still fits under it (the tip shrinks to what is left); a
//! base fee above the cap, a replacement whose required bump passes the cap, or a whole fee
//! (`gas_limit × max_fee_per_gas`) above `max_fee` is refused with
//! [`ChainError::FeeCapExceeded`], whose reason names the figures.

use waas_core::ports::{ChainError, FeeCaps, Fees};

/// Wei per gwei.
const GWEI_DECIMALS: u8 = 9;

/// `text` (a non-negative decimal like `"0.05"` or `"500"`) in base units of an asset
/// with `decimals`; `None` if it is not such a number, has more decimals, or overflows.
pub fn parse_units(text: &str, decimals: u8) -> Option<u128> {
    let text = text.trim();
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (text.contains('.') && frac.is_empty()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(decimals) {
        return None;
    }
    let scale = 10u128.checked_pow(u32::from(decimals))?;
    let whole = int.parse::<u128>().ok()?.checked_mul(scale)?;
    let part = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<width$}", width = usize::from(decimals));
        padded.parse::<u128>().ok()?
    };
    whole.checked_add(part)
}

/// `value` base units of an asset with `decimals` as an exact decimal string (`"0.05"`).
pub fn format_units(value: u128, decimals: u8) -> String {
    let digits = value.to_string();
    let decimals = usize::from(decimals);
    if decimals == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = decimals + 1);
    let (int, frac) = padded.split_at(padded.len() - decimals);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// `wei` per gas, in gwei, for reasons people read.
fn gwei(wei: u128) -> String {
    format!("{} gwei", format_units(wei, GWEI_DECIMALS))
}

/// The configured caps, parsed. `max_fee_per_gas` is in gwei (EVM only), `max_fee` in the
/// native asset's units; `None` takes the chain's default. Errors name the field.
pub fn parse_caps(
    evm: bool,
    max_fee_per_gas: Option<&str>,
    max_fee: Option<&str>,
    native_decimals: u8,
    max_speed_ups: u32,
) -> Result<FeeCaps, String> {
    let max_fee_per_gas_wei =
        if evm {
            let text = max_fee_per_gas.unwrap_or("500");
            let wei = parse_units(text, GWEI_DECIMALS).filter(|wei| *wei > 0).ok_or_else(|| {
            format!(
                "max_fee_per_gas {text:?} must be a positive decimal number of gwei with at \
                 most 9 decimals"
            )
        })?;
            Some(wei)
        } else {
            if max_fee_per_gas.is_some() {
                return Err(
                    "max_fee_per_gas is for EVM networks only (Solana fees are fixed per \
                        signature; cap them with max_fee)"
                        .into(),
                );
            }
            None
        };
    let text = max_fee.unwrap_or(if evm { "0.05" } else { "0.01" });
    let max_fee_base_units = parse_units(text, native_decimals)
        .filter(|units| *units > 0)
        .ok_or_else(|| {
            format!(
                "max_fee {text:?} must be a positive decimal number of the native asset with \
                 at most {native_decimals} decimals"
            )
        })?;
    Ok(FeeCaps {
        max_fee_per_gas_wei,
        max_fee_base_units,
        max_speed_ups,
    })
}

/// Fits `wanted` fees under `caps` on a network whose latest base fee is `base_fee`.
///
/// `floor` is what a replacement must offer at least (112.5 % of the previous fees): a
/// replacement is never clamped below it. `decimals` and `asset` only format the reason.
pub fn capped(
    wanted: Fees,
    floor: Option<Fees>,
    base_fee: u128,
    gas_limit: u64,
    caps: &FeeCaps,
    native: (&str, u8),
) -> Result<Fees, ChainError> {
    let mut fees = wanted;
    if let Some(cap) = caps.max_fee_per_gas_wei {
        if base_fee > cap {
            return Err(ChainError::FeeCapExceeded(format!(
                "the network's base fee of {} is above the cap of {} per gas (max_fee_per_gas)",
                gwei(base_fee),
                gwei(cap)
            )));
        }
        if let Some(floor) = floor
            && floor.max_fee_per_gas > cap
        {
            return Err(ChainError::FeeCapExceeded(format!(
                "a replacement must offer at least {} per gas, above the cap of {} \
                 (max_fee_per_gas)",
                gwei(floor.max_fee_per_gas),
                gwei(cap)
            )));
        }
        let floor_tip = floor.map_or(0, |f| f.max_priority_fee_per_gas);
        fees.max_fee_per_gas = fees.max_fee_per_gas.min(cap);
        // The tip is what is left above the base fee, never below what a replacement needs.
        fees.max_priority_fee_per_gas = fees
            .max_priority_fee_per_gas
            .min(cap.saturating_sub(base_fee))
            .max(floor_tip)
            .min(fees.max_fee_per_gas);
    }
    let total = u128::from(gas_limit).checked_mul(fees.max_fee_per_gas);
    match total {
        Some(total) if total <= caps.max_fee_base_units => Ok(fees),
        _ => {
            let (asset, decimals) = native;
            Err(ChainError::FeeCapExceeded(format!(
                "gas limit {gas_limit} × {} per gas = {} {asset} is above the cap of {} {asset} \
                 per transaction (max_fee)",
                gwei(fees.max_fee_per_gas),
                total.map_or_else(|| "more than u128".into(), |t| format_units(t, decimals)),
                format_units(caps.max_fee_base_units, decimals),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_exactly_and_refuse_what_does_not_fit() {
        assert_eq!(parse_units("500", 9), Some(500_000_000_000));
        assert_eq!(parse_units("0.000001", 9), Some(1_000));
        assert_eq!(parse_units("0.05", 18), Some(50_000_000_000_000_000));
        assert_eq!(parse_units(" 1.50 ", 2), Some(150));
        assert_eq!(parse_units("0.0000000001", 9), None, "too many decimals");
        for bad in ["", ".5", "5.", "-1", "1e3", "abc", "1.2.3", "0x10"] {
            assert_eq!(parse_units(bad, 9), None, "{bad:?}");
        }
        assert_eq!(
            parse_units("340282366920938463463374607431768211455", 1),
            None
        );
        assert_eq!(format_units(50_000_000_000_000_000, 18), "0.05");
        assert_eq!(format_units(1_000, 9), "0.000001");
        assert_eq!(format_units(0, 9), "0");
        assert_eq!(format_units(7, 0), "7");
    }
}
