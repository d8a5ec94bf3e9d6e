//! Call data and typed data read for the policy: ERC-20 transfers and approvals, Permit and
//! Permit2, malformed input.

use serde_json::json;
use waas_policy::Decimal;
use waas_policy::facts::*;

fn usdc() -> Vec<KnownToken> {
    vec![KnownToken {
        symbol: "USDC".into(),
        address: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48".into(),
        decimals: 6,
    }]
}

fn call(selector: [u8; 4], words: &[[u8; 32]]) -> Vec<u8> {
    let mut data = selector.to_vec();
    for word in words {
        data.extend_from_slice(word);
    }
    data
}

fn address(last: u8) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[31] = last;
    word[12] = 0xaa;
    word
}

fn amount(value: u128) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[16..].copy_from_slice(&value.to_be_bytes());
    word
}

const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

#[test]
fn an_erc20_transfer_is_valued_in_the_token_and_goes_to_the_recipient() {
    let data = call(TRANSFER, &[address(7), amount(10_000_000 * 1_000_000)]);
    let moves = evm_call(USDC, &data, Decimal::ZERO, "ETH", &usdc()).unwrap();
    assert_eq!(moves.asset, "USDC");
    assert_eq!(moves.amount, Decimal::from(10_000_000));
    assert_eq!(
        moves.destination,
        format!("0x{}07", "aa".to_string() + &"00".repeat(18))
    );
    assert_eq!(moves.contract.as_deref(), Some(USDC));
    assert!(moves.unvalued.is_none());
    assert!(!moves.unlimited_allowance);
}

#[test]
fn a_max_approval_is_unlimited_and_a_huge_transfer_is_refused() {
    let data = call(APPROVE, &[address(9), [0xff; 32]]);
    let moves = evm_call(USDC, &data, Decimal::ZERO, "ETH", &usdc()).unwrap();
    assert!(moves.unlimited_allowance);
    assert!(moves.unvalued.is_some());
    let data = call(TRANSFER, &[address(9), [0xff; 32]]);
    assert!(evm_call(USDC, &data, Decimal::ZERO, "ETH", &usdc()).is_err());
}

#[test]
fn malformed_call_data_is_an_error_and_unknown_methods_are_unvalued() {
    let short = call(TRANSFER, &[address(7)]);
    assert!(evm_call(USDC, &short, Decimal::ZERO, "ETH", &usdc()).is_err());
    let mut dirty = address(7);
    dirty[0] = 1;
    let not_address = call(TRANSFER, &[dirty, amount(5)]);
    assert!(evm_call(USDC, &not_address, Decimal::ZERO, "ETH", &usdc()).is_err());
    assert!(evm_call(USDC, &[0xa9, 0x05], Decimal::ZERO, "ETH", &usdc()).is_err());
    let unknown = evm_call(USDC, &[1, 2, 3, 4, 5], Decimal::ONE, "ETH", &usdc()).unwrap();
    assert!(unknown.unvalued.is_some());
    assert_eq!(unknown.asset, "ETH");
}

#[test]
fn an_unknown_token_cannot_be_valued() {
    let data = call(TRANSFER, &[address(7), amount(5)]);
    let moves = evm_call(
        "0x1111111111111111111111111111111111111111",
        &data,
        Decimal::ZERO,
        "ETH",
        &usdc(),
    )
    .unwrap();
    assert!(moves.unvalued.is_some());
}

#[test]
fn permits_are_token_approvals() {
    let permit = json!({
        "primaryType": "Permit",
        "domain": {"name": "USD Coin", "chainId": 1, "verifyingContract": USDC},
        "message": {"owner": "0x01", "spender": "0xBEEF", "value": "2500000000", "nonce": 0, "deadline": 1}
    });
    let moves = typed_data_approval(&permit, &usdc()).unwrap().unwrap();
    assert_eq!(
        (moves.asset.as_str(), moves.amount),
        ("USDC", Decimal::from(2500))
    );
    assert_eq!(moves.destination, "0xbeef");
    let unlimited = json!({
        "primaryType": "PermitSingle",
        "domain": {"name": "Permit2", "chainId": 1},
        "message": {"details": {"token": USDC, "amount": "0xffffffffffffffffffffffffffffffffffffffff", "expiration": 1, "nonce": 0},
                    "spender": "0xBEEF", "sigDeadline": 1}
    });
    let moves = typed_data_approval(&unlimited, &usdc()).unwrap().unwrap();
    assert!(moves.unlimited_allowance);
    let batch = json!({
        "primaryType": "PermitBatchTransferFrom",
        "domain": {"name": "Permit2", "chainId": 1},
        "message": {"permitted": [{"token": USDC, "amount": 1_000_000}, {"token": USDC, "amount": "3000000"}],
                    "spender": "0xBEEF", "nonce": 0, "deadline": 1}
    });
    let moves = typed_data_approval(&batch, &usdc()).unwrap().unwrap();
    assert_eq!(moves.amount, Decimal::from(1));
    assert_eq!(moves.also_moves[0].amount, Decimal::from(3));
    let mail = json!({"primaryType": "Mail", "message": {"contents": "hi"}});
    assert!(typed_data_approval(&mail, &usdc()).unwrap().is_none());
    let broken = json!({"primaryType": "Permit", "domain": {"verifyingContract": USDC},
                        "message": {"spender": "0xBEEF", "value": "-1"}});
    assert!(typed_data_approval(&broken, &usdc()).is_err());
}
