//! The login form's captcha (驗證碼 with 更換圖片): a picture of a short answer, rendered
//! server-side by the `captcha` crate, whose answer is held server-side for a few minutes and
//! accepted once. Characters people confuse (0/O, 1/I/l, 5/S, 2/Z, 8/B) are never used.

use std::sync::Arc;
use std::time::Duration;

use crate::random;
use crate::sessions::StoreError;
use crate::volatile::Volatile;

/// Readable characters only, upper case; answers are compared without regard to case.
const ALPHABET: &[char] = &[
    '3', '4', '6', '7', '9', 'A', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'M', 'N', 'P', 'R', 'T',
    'U', 'V', 'W', 'X', 'Y',
];
const LENGTH: usize = 5;
const LIFETIME: Duration = Duration::from_secs(300);
static DRAWING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

#[derive(Clone)]
pub struct Captchas {
    volatile: Arc<dyn Volatile>,
}

fn key(id: &str) -> String {
    format!("cap:{id}")
}

fn random_answer() -> String {
    let mut bytes = [0u8; LENGTH];
    rand::fill(&mut bytes[..]);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()])
        .collect()
}

/// Folds what a person typed: case, spaces, and the full-width forms a Chinese input method
/// may produce.
fn fold(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .flat_map(char::to_uppercase)
        .collect()
}

impl Captchas {
    pub fn new(volatile: Arc<dyn Volatile>) -> Self {
        Captchas { volatile }
    }

    /// A new captcha; returns its id (for the form and the picture's URL).
    pub async fn issue(&self) -> Result<String, StoreError> {
        let id = random::token();
        self.volatile
            .put(&key(&id), random_answer().as_bytes(), LIFETIME)
            .await?;
        Ok(id)
    }

    /// The picture for `id` (PNG), drawn anew for each request; `None` for an unknown id.
    pub async fn picture(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !random::is_token(id) {
            return Ok(None);
        }
        let Some(answer) = self.volatile.get(&key(id)).await? else {
            return Ok(None);
        };
        let answer = String::from_utf8_lossy(&answer).into_owned();
        // Drawing costs CPU: at most two at once, so a flood of picture requests cannot take
        // the cores from proxied traffic.
        let Ok(_permit) = DRAWING.try_acquire() else {
            return Err(StoreError("too many captcha pictures being drawn".into()));
        };
        let png = tokio::task::spawn_blocking(move || draw(&answer))
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(png)
    }

    /// Checks and uses up the answer: right or wrong, the same captcha never counts twice.
    pub async fn check(&self, id: &str, typed: &str) -> Result<bool, StoreError> {
        if !random::is_token(id) {
            return Ok(false);
        }
        let Some(answer) = self.volatile.take(&key(id)).await? else {
            return Ok(false);
        };
        let expected = String::from_utf8_lossy(&answer);
        Ok(subtle::ConstantTimeEq::ct_eq(fold(typed).as_bytes(), expected.as_bytes()).into())
    }
}

fn draw(answer: &str) -> Option<Vec<u8>> {
    use captcha::Captcha;
    use captcha::filters::{Noise, Wave};
    let mut c = Captcha::new();
    for ch in answer.chars() {
        c.set_chars(&[ch]).add_char();
    }
    c.apply_filter(Noise::new(0.15))
        .apply_filter(Wave::new(2.0, 12.0))
        .view(200, 70);
    c.as_png()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volatile::memory::MemoryVolatile;

    #[test]
    fn answers_avoid_confusable_characters() {
        for _ in 0..50 {
            let a = random_answer();
            assert_eq!(a.chars().count(), LENGTH);
            assert!(!a.contains(['0', 'O', '1', 'I', 'L', '5', 'S', '2', 'Z', '8', 'B']));
        }
    }

    #[test]
    fn typing_is_folded() {
        assert_eq!(fold(" a7k m "), "A7KM");
        assert_eq!(fold("ＡＢ３"), "AB3");
    }

    #[tokio::test]
    async fn an_answer_works_once() -> Result<(), StoreError> {
        let v: Arc<dyn Volatile> = Arc::new(MemoryVolatile::new());
        let c = Captchas::new(v.clone());
        let id = c.issue().await?;
        let answer =
            String::from_utf8(v.get(&key(&id)).await?.unwrap_or_default()).unwrap_or_default();
        let png = c.picture(&id).await?.unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG"), "a PNG picture");
        assert!(!c.check(&id, "WRONG").await?);
        assert!(!c.check(&id, &answer).await?, "a wrong try used it up");
        let id = c.issue().await?;
        let answer =
            String::from_utf8(v.get(&key(&id)).await?.unwrap_or_default()).unwrap_or_default();
        assert!(c.check(&id, &answer.to_lowercase()).await?);
        assert!(!c.check(&id, &answer).await?, "accepted once only");
        assert!(c.picture("not-a-token").await?.is_none());
        Ok(())
    }
}
