//! Async locks by key: one image downloaded once however many spawns want
//! it, one bridge changed by one task at a time, one operation per VM.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// A lock per key, created on first use and dropped when nobody holds it.
pub struct KeyedLocks<K> {
    locks: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K: Eq + Hash + Clone> Default for KeyedLocks<K> {
    fn default() -> Self {
        KeyedLocks {
            locks: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> KeyedLocks<K> {
    /// Waits for and takes the lock of `key`.
    pub async fn lock(&self, key: &K) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            // Forget locks nobody holds or waits for, so the map stays small.
            map.retain(|_, l| Arc::strong_count(l) > 1);
            map.entry(key.clone()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn same_key_waits_other_key_does_not() {
        let locks = Arc::new(KeyedLocks::<String>::default());
        let a = locks.lock(&"a".to_string()).await;
        let _b = locks.lock(&"b".to_string()).await;
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move { l2.lock(&"a".to_string()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
