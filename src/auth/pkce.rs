//! Random strings for PKCE (`plain`, the only method MAL supports) and the OAuth `state`.

use rand::RngExt;

/// RFC 7636 "unreserved" characters.
const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// A fresh random string of `len` unreserved characters.
pub fn random_string(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| UNRESERVED[rng.random_range(0..UNRESERVED.len())] as char)
        .collect()
}

/// A fresh code verifier: 128 characters, the maximum RFC 7636 allows. With `plain`, the
/// code challenge is the verifier itself.
pub fn new_verifier() -> String {
    random_string(128)
}

/// A fresh `state` value binding the redirect to this login attempt.
pub fn new_state() -> String {
    random_string(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_is_128_unreserved_characters_and_fresh() {
        let a = new_verifier();
        let b = new_verifier();
        assert_eq!(a.len(), 128);
        assert!(a.bytes().all(|c| UNRESERVED.contains(&c)));
        assert_ne!(a, b);
    }
}
