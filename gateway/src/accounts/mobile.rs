//! Mobile citizen certificate (行動自然人憑證) bindings: which account a national ID signs in
//! to. The ID itself is never stored, only its keyed hashes (`Keyring::keyed_hashes`), so a
//! copy of the table cannot be tested against the few million possible IDs without the key.

use super::AccountStore;

/// A verified mobile certificate sign-in as stored in a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileBinding {
    /// The keyed hash of the national ID under the ring's primary key.
    pub id_hash: String,
    /// The certificate that approved the binding: issuer name, issuing-CA key id, serial.
    pub issuer: String,
    pub issuer_key_id: String,
    pub serial_hex: String,
    /// The certificate's common name (the holder's name), for the account pages.
    pub subject_name: String,
    /// The ID's last four characters, for the account pages (as for the card).
    pub id_last4: String,
}

/// What binding a mobile certificate did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MobileBindOutcome {
    Bound,
    /// The ID is bound to another account (which is never named).
    Conflict,
}

impl AccountStore {
    /// Binds (or re-binds: replacing the account's earlier binding) a national ID to an
    /// account. `others` are the ID's hashes under the ring's older keys: a binding made
    /// before a key rotation still counts as the ID's. `Conflict` when the ID is bound to
    /// another account; the unique index decides between two racing binds.
    pub async fn bind_mobile(
        &self,
        account_id: &str,
        binding: &MobileBinding,
        others: &[String],
        now: i64,
    ) -> anyhow::Result<MobileBindOutcome> {
        let mut hashes = vec![binding.id_hash.clone()];
        hashes.extend(others.iter().cloned());
        if let Some((owner, _)) = self.account_by_mobile_id(&hashes).await?
            && owner != account_id
        {
            return Ok(MobileBindOutcome::Conflict);
        }
        let done = sqlx::query(
            "INSERT INTO mobile_bindings (account_id, id_hash, issuer, issuer_key_id, serial, \
             subject_name, id_last4, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (account_id) DO UPDATE SET id_hash = excluded.id_hash, \
             issuer = excluded.issuer, issuer_key_id = excluded.issuer_key_id, \
             serial = excluded.serial, subject_name = excluded.subject_name, \
             id_last4 = excluded.id_last4, created_at = excluded.created_at",
        )
        .bind(account_id.to_string())
        .bind(binding.id_hash.clone())
        .bind(binding.issuer.clone())
        .bind(binding.issuer_key_id.clone())
        .bind(binding.serial_hex.clone())
        .bind(binding.subject_name.clone())
        .bind(binding.id_last4.clone())
        .bind(now)
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(MobileBindOutcome::Bound),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Ok(MobileBindOutcome::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account bound to a national ID, given its keyed hashes (every key of the ring),
    /// and the hash the binding holds.
    pub async fn account_by_mobile_id(
        &self,
        hashes: &[String],
    ) -> anyhow::Result<Option<(String, String)>> {
        for hash in hashes {
            let found: Option<(String, String)> = sqlx::query_as(
                "SELECT account_id, id_hash FROM mobile_bindings WHERE id_hash = $1",
            )
            .bind(hash.clone())
            .fetch_optional(&self.pool)
            .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Moves a binding found under an older key to the primary key's hash, so the old key
    /// can be retired once every ID has signed in again.
    pub async fn rehash_mobile(&self, account_id: &str, id_hash: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE mobile_bindings SET id_hash = $1 WHERE account_id = $2")
            .bind(id_hash.to_string())
            .bind(account_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The bound holder's name, ID last four and binding time, for display.
    pub async fn mobile_holder(
        &self,
        account_id: &str,
    ) -> anyhow::Result<Option<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT subject_name, id_last4, created_at FROM mobile_bindings \
             WHERE account_id = $1",
        )
        .bind(account_id.to_string())
        .fetch_optional(&self.pool)
        .await?)
    }
}
