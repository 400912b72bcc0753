//! [`ClientView`]: what a client needs of a plan, and nothing else.
//!
//! A [`Plan`] holds the model (every weight, in its instructions and
//! plaintexts); in private inference the weights are the server's. The
//! client needs only where input elements go (the input layout), where
//! output elements are read (the output map), the evaluation keys to
//! generate, the parameters, the samples per inference, and the hash of
//! the plan, so that what it receives can be matched to the plan it was
//! made for. The view's size depends on the input and output sizes, not on
//! the model's.
//!
//! Format: the common envelope (magic `MOFHEVAL`, kind 1, version 1, the
//! parameter fingerprint or 0), then the bincode payload; at most
//! [`VIEW_BYTES_LIMIT`] bytes, checked for consistency on load.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Context, DecodeError, Error, Result};
use crate::he::wire::Envelope;
use crate::he::{HeWire, KeyRequirements};
use crate::plan::{CkksChoice, InputLayout, IntegerPlan, OutputElem, Plan};

/// Largest serialised client view accepted (64 MiB).
pub const VIEW_BYTES_LIMIT: u64 = 1 << 26;

const VIEW: Envelope = Envelope {
    magic: b"MOFHEVAL",
    kind: 1,
    version: 1,
    what: "client view",
};

/// SHA-256 of a plan's bytes ([`Plan::to_bytes`]): names the plan in every
/// artefact made for it.
pub fn plan_hash(plan: &Plan) -> Result<[u8; 32]> {
    Ok(Sha256::digest(plan.to_bytes()?).into())
}

/// The concrete parameters a view was made for: the backend's scheme name,
/// fingerprint and parameter bytes ([`HeWire::params_to_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewParams {
    /// The scheme's name ([`crate::he::HeScheme::NAME`]).
    pub scheme: String,
    /// The parameter fingerprint ([`HeWire::fingerprint`]).
    pub fingerprint: u64,
    /// The parameters as bytes.
    pub bytes: Vec<u8>,
}

/// The client-side view of a [`Plan`]: no weights. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientView {
    plan_hash: [u8; 32],
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
    input: InputLayout,
    samples: Option<usize>,
    period: Option<usize>,
    depth: u32,
    output_cts: usize,
    output_map: Vec<OutputElem>,
    keys: KeyRequirements,
    requirements: CkksChoice,
    integer: Option<IntegerPlan>,
    params: Option<ViewParams>,
}

impl ClientView {
    /// The backend-neutral view of a plan (no concrete parameters; the
    /// in-process client uses it).
    pub fn from_plan(plan: &Plan) -> Result<ClientView> {
        // `Plan::samples` answers the slot count when the plan fixes none.
        let s = plan.samples(usize::MAX);
        Ok(ClientView {
            plan_hash: plan_hash(plan)?,
            input_shape: plan.input_shape().to_vec(),
            output_shape: plan.output_shape().to_vec(),
            input: plan.input_layout().clone(),
            samples: (s != usize::MAX).then_some(s),
            period: plan.period(),
            depth: plan.depth(),
            output_cts: plan.outputs().len(),
            output_map: plan.output_map().to_vec(),
            keys: plan.key_requirements().clone(),
            requirements: plan.params().clone(),
            integer: plan.integer().cloned(),
            params: None,
        })
    }

    /// The view of a plan for a concrete backend: records its parameters
    /// (bytes and fingerprint), so a client in another process can rebuild
    /// the backend ([`ClientView::scheme`]).
    pub fn new<S: HeWire>(plan: &Plan, scheme: &S) -> Result<ClientView> {
        let mut v = ClientView::from_plan(plan)?;
        v.params = Some(ViewParams {
            scheme: S::NAME.to_string(),
            fingerprint: scheme.fingerprint(),
            bytes: scheme.params_to_bytes()?,
        });
        Ok(v)
    }

    /// The backend of the recorded parameters; an error when the view has
    /// none or they are another scheme's.
    pub fn scheme<S: HeWire>(&self) -> Result<S> {
        let p = self.params.as_ref().ok_or(Error::WrongContext {
            what: "client view without parameters",
            context: Context::Parameters,
        })?;
        if p.scheme != S::NAME {
            return Err(Error::WrongContext {
                what: "client view of another scheme",
                context: Context::Parameters,
            });
        }
        let s = S::from_params_bytes(&p.bytes)?;
        if s.fingerprint() != p.fingerprint {
            return Err(Error::WrongContext {
                what: "client view parameters",
                context: Context::Parameters,
            });
        }
        Ok(s)
    }

    /// Checks that `scheme` has the parameters the view records (a view
    /// without parameters accepts any backend).
    pub fn check_scheme<S: HeWire>(&self, scheme: &S) -> Result<()> {
        match &self.params {
            Some(p) if p.scheme != S::NAME || p.fingerprint != scheme.fingerprint() => {
                Err(Error::WrongContext {
                    what: "backend",
                    context: Context::Parameters,
                })
            }
            _ => Ok(()),
        }
    }

    /// SHA-256 of the plan's bytes.
    pub fn plan_hash(&self) -> [u8; 32] {
        self.plan_hash
    }
    /// Per-sample input shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }
    /// Per-sample output shape.
    pub fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }
    /// Where the client puts input elements.
    pub fn input_layout(&self) -> &InputLayout {
        &self.input
    }
    /// Samples per inference for `slots` slots.
    pub fn samples(&self, slots: usize) -> usize {
        self.samples.unwrap_or(slots)
    }
    /// The slot period of a replicated layout.
    pub fn period(&self) -> Option<usize> {
        self.period
    }
    /// The level inputs are encrypted at (the plan's depth).
    pub fn depth(&self) -> u32 {
        self.depth
    }
    /// Number of output ciphertexts.
    pub fn output_count(&self) -> usize {
        self.output_cts
    }
    /// Where each output element is read.
    pub fn output_map(&self) -> &[OutputElem] {
        &self.output_map
    }
    /// Evaluation keys the plan needs.
    pub fn key_requirements(&self) -> &KeyRequirements {
        &self.keys
    }
    /// The backend-neutral requirements the plan was compiled for (depth,
    /// slots, scale and prime sizes of the smallest secure CKKS set).
    pub fn requirements(&self) -> &CkksChoice {
        &self.requirements
    }
    /// Input quantisation and output scales of an integer plan.
    pub fn integer(&self) -> Option<&IntegerPlan> {
        self.integer.as_ref()
    }
    /// The concrete parameters, when the view was made for a backend.
    pub fn params(&self) -> Option<&ViewParams> {
        self.params.as_ref()
    }

    /// The parameter fingerprint (0 without concrete parameters).
    pub fn fingerprint(&self) -> u64 {
        self.params.as_ref().map_or(0, |p| p.fingerprint)
    }

    /// Serialise: envelope, then the bincode payload.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|_| Error::Encode { what: VIEW.what })?;
        Ok(VIEW.seal(self.fingerprint(), &body))
    }

    /// Read a serialised view: size limit, envelope, complete payload, and
    /// consistency (every input element inside the input shape, every output
    /// ciphertext index in range, output scales matching the map).
    pub fn from_bytes(bytes: &[u8]) -> Result<ClientView> {
        let (fp, body) = VIEW.open(bytes, VIEW_BYTES_LIMIT)?;
        let config = bincode::config::standard().with_limit::<{ VIEW_BYTES_LIMIT as usize }>();
        let (view, used): (ClientView, usize) = bincode::serde::decode_from_slice(body, config)
            .map_err(|_| {
                VIEW.error::<Error>(DecodeError::Malformed {
                    offset: crate::he::wire::HEADER_LEN as u64 + 8,
                })
            })?;
        if used != body.len() {
            return Err(VIEW.error(DecodeError::TrailingBytes {
                count: (body.len() - used) as u64,
            }));
        }
        if fp != view.fingerprint() {
            return Err(VIEW.error(DecodeError::NotConforming {
                what: "parameter fingerprint",
            }));
        }
        view.validate()?;
        Ok(view)
    }

    /// Internal consistency (what the client indexes with).
    fn validate(&self) -> Result<()> {
        let bad = |what| VIEW.error(DecodeError::NotConforming { what });
        let dim = self
            .input_shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or(bad("input shape"))?;
        let out_dim = self
            .output_shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or(bad("output shape"))?;
        if dim == 0 || out_dim != self.output_map.len() {
            return Err(bad("shapes"));
        }
        if self
            .input
            .cts
            .iter()
            .flatten()
            .any(|&(_, e)| e as usize >= dim)
        {
            return Err(bad("input element outside the input shape"));
        }
        if self.output_map.iter().any(|o| match *o {
            OutputElem::Slot { ct, .. } => ct as usize >= self.output_cts,
            OutputElem::Const(_) => false,
        }) {
            return Err(bad("output ciphertext index"));
        }
        if self.samples == Some(0) || self.period == Some(0) {
            return Err(bad("samples or period of zero"));
        }
        if let Some(q) = &self.integer
            && q.output_scales().len() != self.output_map.len()
        {
            return Err(bad("output scales"));
        }
        Ok(())
    }
}
