//! The serialised form of a [`Plan`]: magic, version, then the bincode
//! payload; reading it checks the size limit, the framing and then the
//! plan's consistency ([`Plan::validate`]).

use super::Plan;
use crate::error::{DecodeError, Error, Result};

/// Magic bytes of a serialised plan.
const PLAN_MAGIC: &[u8; 8] = b"MOFHPLAN";
/// Format version of a serialised plan.
const PLAN_VERSION: u32 = 3;
/// Largest serialised plan accepted (1 GiB).
pub const PLAN_BYTES_LIMIT: usize = 1 << 30;

impl Plan {
    /// Serialise: magic, version, then the bincode payload.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = PLAN_MAGIC.to_vec();
        out.extend_from_slice(&PLAN_VERSION.to_le_bytes());
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|_| Error::Encode { what: "plan" })?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Read a serialised plan: checks the size limit, magic, version, that the
    /// payload decodes completely, and that the plan is internally consistent
    /// (every id in range, every value defined before use). Garbage gives
    /// [`Error::Decode`], never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Plan> {
        let err = |reason| Error::Decode {
            what: "plan",
            reason,
        };
        if bytes.len() > PLAN_BYTES_LIMIT {
            return Err(err(DecodeError::TooLarge {
                len: bytes.len() as u64,
                limit: PLAN_BYTES_LIMIT as u64,
            }));
        }
        if bytes.len() < 12 || &bytes[..8] != PLAN_MAGIC {
            return Err(err(DecodeError::BadMagic));
        }
        let mut v = [0u8; 4];
        v.copy_from_slice(&bytes[8..12]);
        let version = u32::from_le_bytes(v);
        if version != PLAN_VERSION {
            return Err(err(DecodeError::Version {
                found: version,
                supported: PLAN_VERSION,
            }));
        }
        let config = bincode::config::standard().with_limit::<PLAN_BYTES_LIMIT>();
        let (plan, used): (Plan, usize) =
            bincode::serde::decode_from_slice(&bytes[12..], config)
                .map_err(|_| err(DecodeError::Malformed { offset: 12 }))?;
        if used != bytes.len() - 12 {
            return Err(err(DecodeError::TrailingBytes {
                count: (bytes.len() - 12 - used) as u64,
            }));
        }
        plan.validate().map_err(|e| match e {
            Error::InvalidPlan { reason } => err(DecodeError::NotConforming {
                what: reason.what(),
            }),
            other => other,
        })?;
        Ok(plan)
    }
}
