//! [`HeWire`] for [`Bfv`]: `fhe`'s protobuf encodings inside the common
//! envelope (magic `MOFH_BFV`, a kind byte numbered as the CKKS kinds, the
//! format version, the parameter fingerprint).
//!
//! `fhe`'s decoders are not meant for hostile input (an unreduced residue
//! or a key of an unexpected shape reaches code that asserts), so every
//! message is first decoded here with `prost` into `fhe`'s public protobuf
//! types and checked: sizes against limits derived from the parameters,
//! levels in range, the number of polynomials, every polynomial of the
//! ring degree with exactly the bytes of its moduli and every residue below
//! its modulus, key-switching keys of exactly the shape this backend
//! generates. Only then is `fhe` called. Any failure is [`Error::Decode`].
//!
//! Secret-key ciphertexts are seeded by `fhe` itself (the uniform part is
//! stored as its seed), so [`HeWire::encrypt_secret_to_bytes`] writes half
//! a ciphertext here too.

use fhe::bfv::{Ciphertext, EvaluationKey, PublicKey, RelinearizationKey, SecretKey};
use fhe::proto::bfv as pb;
use fhe_traits::{DeserializeParametrized, Serialize as FheSerialize};
use prost::Message;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::{Bfv, BfvCiphertext, BfvEvalKeys, BfvParams, BfvPublicKey, BfvSecretKey};
use crate::he::OpKind;
use crate::he::error::{DecodeError, Error, Result};
use crate::he::wire::{Envelope, HEADER_LEN, HeWire, check_keys_meet, switching_keys_required};
use crate::he::{HeScheme, KeyId, KeyRequirements, Level};

const MAGIC: &[u8; 8] = b"MOFH_BFV";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const fn env(kind: u8, what: &'static str) -> Envelope {
    Envelope {
        magic: MAGIC,
        kind,
        version: FORMAT_VERSION,
        what,
    }
}

const PARAMS: Envelope = env(1, "BFV parameters");
const CIPHERTEXT: Envelope = env(2, "BFV ciphertext");
const PUBLIC_KEY: Envelope = env(4, "BFV public key");
const EVAL_KEYS: Envelope = env(5, "BFV evaluation keys");
const SECRET_KEY: Envelope = env(16, "BFV secret key");

/// Largest secret-key coefficient magnitude accepted (`fhe` samples them
/// from a centred binomial of variance 10: at most 20).
const MAX_SECRET_COEFF: i64 = 32;

#[derive(Serialize, Deserialize)]
struct ParamsWire {
    degree: u64,
    plaintext_modulus: u64,
    moduli_sizes: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct EvalKeysWire {
    rotations: Vec<u64>,
    relin: Vec<Vec<u8>>,
    galois: Vec<Vec<u8>>,
}

/// `fhe-math`'s serialised polynomial (`fhers.rq.Rq`), to check it before
/// `fhe` reads it.
#[derive(Clone, PartialEq, Message)]
struct RqWire {
    #[prost(int32, tag = "1")]
    representation: i32,
    #[prost(uint32, tag = "2")]
    degree: u32,
    #[prost(bytes = "vec", tag = "3")]
    coefficients: Vec<u8>,
    #[prost(bool, tag = "4")]
    allow_variable_time: bool,
}

fn nbits(q: u64) -> usize {
    64 - (q - 1).leading_zeros() as usize
}

/// Decode with an envelope, checking the fingerprint.
fn open<'b>(bfv: &Bfv, e: &Envelope, bytes: &'b [u8], limit: u64) -> Result<&'b [u8]> {
    let (fp, body) = e.open(bytes, limit)?;
    if fp != bfv.id {
        return Err(e.error(DecodeError::NotConforming {
            what: "parameter fingerprint",
        }));
    }
    Ok(body)
}

/// Splits the 16-byte [`KeyId`] that leads the body of key-bound objects
/// (public key, evaluation keys, ciphertexts).
fn split_key_id<'b>(e: &Envelope, body: &'b [u8]) -> Result<(KeyId, &'b [u8])> {
    if body.len() < 16 {
        return Err(e.error(DecodeError::Malformed {
            offset: (HEADER_LEN + body.len()) as u64,
        }));
    }
    let (id, rest) = body.split_at(16);
    let mut raw = [0u8; 16];
    raw.copy_from_slice(id);
    Ok((KeyId::from_bytes(raw), rest))
}

/// `key` (16 bytes) followed by `body`.
fn with_key_id(key: KeyId, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&key.to_bytes());
    out.extend_from_slice(body);
    out
}

fn decode<M: Message + Default>(e: &Envelope, body: &[u8]) -> Result<M> {
    M::decode(body).map_err(|_| e.error(DecodeError::Invalid { format: "protobuf" }))
}

impl Bfv {
    /// The ciphertext moduli at `fhe` level `level` (the last `level` dropped).
    fn moduli_at(&self, e: &Envelope, level: u32) -> Result<&[u64]> {
        let q = self.params.moduli();
        let keep = q
            .len()
            .checked_sub(level as usize)
            .filter(|&k| k > 0)
            .ok_or(e.error(DecodeError::NotConforming { what: "level" }))?;
        Ok(&q[..keep])
    }

    /// A serialised polynomial over `moduli`: the ring degree, exactly the
    /// bytes of the moduli, every residue below its modulus.
    fn check_rq(&self, e: &Envelope, bytes: &[u8], moduli: &[u64]) -> Result<()> {
        let bad = |what| e.error(DecodeError::NotConforming { what });
        let rq: RqWire = decode(e, bytes)?;
        if !(1..=3).contains(&rq.representation) {
            return Err(bad("polynomial representation"));
        }
        let n = self.params.degree();
        if rq.degree as usize != n {
            return Err(bad("polynomial degree"));
        }
        let expected: usize = moduli.iter().map(|&q| nbits(q) * n / 8).sum();
        if rq.coefficients.len() != expected {
            return Err(bad("polynomial length"));
        }
        let mut at = 0usize;
        for &q in moduli {
            let bits = nbits(q);
            let len = bits * n / 8;
            let chunk = rq
                .coefficients
                .get(at..at + len)
                .ok_or(bad("polynomial length"))?;
            at += len;
            // Little-endian bit stream, `bits` bits per residue.
            let mask = (u128::from(u64::MAX)) >> (64 - bits);
            let (mut acc, mut have) = (0u128, 0usize);
            for &b in chunk {
                acc |= u128::from(b) << have;
                have += 8;
                while have >= bits {
                    if (acc & mask) as u64 >= q {
                        return Err(bad("residue not below its modulus"));
                    }
                    acc >>= bits;
                    have -= bits;
                }
            }
        }
        Ok(())
    }

    /// A ciphertext message: level in range, 2 or 3 polynomials (one of
    /// them possibly as a 32-byte seed), each valid at the level.
    fn check_ciphertext(&self, e: &Envelope, ct: &pb::Ciphertext) -> Result<()> {
        let bad = |what| e.error(DecodeError::NotConforming { what });
        let moduli = self.moduli_at(e, ct.level)?;
        let polys = ct.c.len() + usize::from(!ct.seed.is_empty());
        if !(2..=3).contains(&polys) || ct.c.is_empty() {
            return Err(bad("number of polynomials"));
        }
        if !ct.seed.is_empty() && ct.seed.len() != 32 {
            return Err(bad("seed length"));
        }
        for c in &ct.c {
            self.check_rq(e, c, moduli)?;
        }
        Ok(())
    }

    /// A key-switching key of the shape this backend generates: key at the
    /// full modulus, for ciphertexts at `fhe` level `level`, no base
    /// decomposition, one component per ciphertext modulus.
    fn check_ksk(&self, e: &Envelope, k: Option<&pb::KeySwitchingKey>, level: u32) -> Result<()> {
        let bad = |what| e.error(DecodeError::NotConforming { what });
        let k = k.ok_or(bad("missing key-switching key"))?;
        if k.ksk_level != 0 || k.ciphertext_level != level || k.log_base != 0 {
            return Err(bad("key-switching key levels"));
        }
        let digits = self.moduli_at(e, level)?.len();
        let seeded = !k.seed.is_empty();
        if k.c0.len() != digits || (seeded && k.seed.len() != 32) {
            return Err(bad("key-switching key size"));
        }
        if (seeded && !k.c1.is_empty()) || (!seeded && k.c1.len() != digits) {
            return Err(bad("key-switching key size"));
        }
        let full = self.params.moduli();
        for c in k.c0.iter().chain(&k.c1) {
            self.check_rq(e, c, full)?;
        }
        Ok(())
    }

    /// Bytes of one polynomial over every modulus, with protobuf framing.
    fn poly_bytes(&self) -> u64 {
        let n = self.params.degree();
        let data: usize = self.params.moduli().iter().map(|&q| nbits(q) * n / 8).sum();
        data as u64 + 32
    }

    /// Bytes of one key-switching key (both components of every digit).
    fn ksk_bytes(&self) -> u64 {
        let digits = self.params.moduli().len() as u64;
        2 * digits * (self.poly_bytes() + 8) + 128
    }

    fn fhe_err(e: &Envelope) -> impl Fn(fhe::Error) -> Error + '_ {
        move |_| {
            e.error(DecodeError::NotConforming {
                what: "rejected by fhe",
            })
        }
    }
}

impl HeWire for Bfv {
    fn fingerprint(&self) -> u64 {
        self.id
    }

    fn params_to_bytes(&self) -> Result<Vec<u8>> {
        let w = ParamsWire {
            degree: self.params.degree() as u64,
            plaintext_modulus: self.params.plaintext_modulus(),
            moduli_sizes: self
                .params
                .moduli_sizes()
                .iter()
                .map(|&s| s as u64)
                .collect(),
        };
        let body = bincode::serde::encode_to_vec(&w, bincode::config::standard())
            .map_err(|_| Error::Encode { what: PARAMS.what })?;
        Ok(PARAMS.seal(self.id, &body))
    }

    fn from_params_bytes(bytes: &[u8]) -> Result<Bfv> {
        let (fp, body) = PARAMS.open(bytes, 4096)?;
        let config = bincode::config::standard().with_limit::<4096>();
        let (w, used): (ParamsWire, usize) = bincode::serde::decode_from_slice(body, config)
            .map_err(|_| {
                PARAMS.error(DecodeError::Malformed {
                    offset: HEADER_LEN as u64 + 24,
                })
            })?;
        if used != body.len() {
            return Err(PARAMS.error(DecodeError::TrailingBytes {
                count: (body.len() - used) as u64,
            }));
        }
        let bad = || PARAMS.error(DecodeError::NotConforming { what: "sizes" });
        if w.moduli_sizes.len() > 64 {
            return Err(bad());
        }
        let sizes = w
            .moduli_sizes
            .iter()
            .map(|&s| usize::try_from(s).map_err(|_| bad()))
            .collect::<Result<Vec<_>>>()?;
        let degree = usize::try_from(w.degree).map_err(|_| bad())?;
        if degree > 1 << 17 {
            return Err(bad());
        }
        let params = BfvParams::builder()
            .degree(degree)
            .plaintext_modulus(w.plaintext_modulus)
            .moduli_sizes(&sizes)
            .build()?;
        let bfv = Bfv::new(params);
        if bfv.id != fp {
            return Err(PARAMS.error(DecodeError::NotConforming {
                what: "parameter fingerprint",
            }));
        }
        Ok(bfv)
    }

    fn secret_key_to_bytes(&self, sk: &BfvSecretKey) -> Result<Zeroizing<Vec<u8>>> {
        self.check_id(sk.id, OpKind::KeyGen)?;
        // `fhe`'s encoder builds a protobuf copy of the coefficients that it
        // drops without zeroising; the bytes returned here are zeroised.
        let body = Zeroizing::new(sk.inner.to_bytes());
        Ok(Zeroizing::new(SECRET_KEY.seal(self.id, &body)))
    }

    fn secret_key_from_bytes(&self, bytes: &[u8]) -> Result<BfvSecretKey> {
        let n = self.params.degree();
        let body = open(self, &SECRET_KEY, bytes, (n as u64) * 10 + 64)?;
        let mut proto: pb::SecretKey = decode(&SECRET_KEY, body)?;
        let ok = proto.coeffs.len() == n
            && proto
                .coeffs
                .iter()
                .all(|c| c.unsigned_abs() <= MAX_SECRET_COEFF as u64);
        proto.coeffs.zeroize();
        if !ok {
            return Err(SECRET_KEY.error(DecodeError::NotConforming {
                what: "secret key coefficients",
            }));
        }
        let inner =
            SecretKey::from_bytes(body, self.params.inner()).map_err(Bfv::fhe_err(&SECRET_KEY))?;
        let key = self.secret_key_id(&inner);
        Ok(BfvSecretKey {
            inner,
            id: self.id,
            key,
        })
    }

    fn public_key_to_bytes(&self, pk: &BfvPublicKey) -> Result<Vec<u8>> {
        self.check_id(pk.id, OpKind::Encrypt)?;
        Ok(PUBLIC_KEY.seal(self.id, &with_key_id(pk.key, &pk.inner.to_bytes())))
    }

    fn public_key_from_bytes(&self, bytes: &[u8]) -> Result<BfvPublicKey> {
        let limit = 2 * self.poly_bytes() + 144;
        let body = open(self, &PUBLIC_KEY, bytes, limit)?;
        let (key, body) = split_key_id(&PUBLIC_KEY, body)?;
        let proto: pb::PublicKey = decode(&PUBLIC_KEY, body)?;
        let c = proto.c.ok_or(PUBLIC_KEY.error(DecodeError::NotConforming {
            what: "missing ciphertext",
        }))?;
        if c.level != 0 {
            return Err(PUBLIC_KEY.error(DecodeError::NotConforming { what: "level" }));
        }
        self.check_ciphertext(&PUBLIC_KEY, &c)?;
        let inner =
            PublicKey::from_bytes(body, self.params.inner()).map_err(Bfv::fhe_err(&PUBLIC_KEY))?;
        Ok(BfvPublicKey {
            inner,
            id: self.id,
            key,
        })
    }

    fn eval_keys_to_bytes(&self, keys: &BfvEvalKeys) -> Result<Vec<u8>> {
        self.check_id(keys.id, OpKind::KeyGen)?;
        let w = EvalKeysWire {
            rotations: keys.rotations.iter().map(|&k| k as u64).collect(),
            relin: keys.relin.iter().map(|k| k.to_bytes()).collect(),
            galois: keys.galois.iter().map(|k| k.to_bytes()).collect(),
        };
        let body =
            bincode::serde::encode_to_vec(&w, bincode::config::standard()).map_err(|_| {
                Error::Encode {
                    what: EVAL_KEYS.what,
                }
            })?;
        Ok(EVAL_KEYS.seal(self.id, &with_key_id(keys.key, &body)))
    }

    fn eval_keys_size_limit(&self, req: &KeyRequirements) -> u64 {
        let levels = self.params.moduli().len() as u64;
        let keys = switching_keys_required(req, self.slot_count()) as u64;
        levels
            .saturating_mul(keys)
            .saturating_mul(self.ksk_bytes())
            .saturating_add(4096 + 16)
    }

    fn eval_keys_from_bytes(&self, bytes: &[u8], req: &KeyRequirements) -> Result<BfvEvalKeys> {
        let e = &EVAL_KEYS;
        let bad = |what| e.error(DecodeError::NotConforming { what });
        let limit = self.eval_keys_size_limit(req);
        let body = open(self, e, bytes, limit)?;
        let (key, body) = split_key_id(e, body)?;
        let config = bincode::config::standard().with_limit::<{ 1 << 34 }>();
        let (w, used): (EvalKeysWire, usize) = bincode::serde::decode_from_slice(body, config)
            .map_err(|_| {
                e.error(DecodeError::Malformed {
                    offset: HEADER_LEN as u64 + 24,
                })
            })?;
        if used != body.len() {
            return Err(e.error(DecodeError::TrailingBytes {
                count: (body.len() - used) as u64,
            }));
        }
        let levels = self.max_level().0 as usize + 1;
        let slots = self.slot_count();
        let mut rotations = std::collections::BTreeSet::new();
        for &k in &w.rotations {
            if k == 0 || k >= slots as u64 || !rotations.insert(k as usize) {
                return Err(bad("rotation step"));
            }
        }
        if !(w.relin.is_empty() || w.relin.len() == levels)
            || !(w.galois.is_empty() || w.galois.len() == levels)
            || rotations.is_empty() != w.galois.is_empty()
        {
            return Err(bad("number of keys"));
        }
        let mut relin = Vec::with_capacity(w.relin.len());
        for (l, b) in w.relin.iter().enumerate() {
            let fhe_level = self.fhe_level(Level(l as u32)) as u32;
            let p: pb::RelinearizationKey = decode(e, b)?;
            self.check_ksk(e, p.ksk.as_ref(), fhe_level)?;
            relin.push(
                RelinearizationKey::from_bytes(b, self.params.inner()).map_err(Bfv::fhe_err(e))?,
            );
        }
        let mut galois = Vec::with_capacity(w.galois.len());
        for (l, b) in w.galois.iter().enumerate() {
            let fhe_level = self.fhe_level(Level(l as u32)) as u32;
            let p: pb::EvaluationKey = decode(e, b)?;
            if p.ciphertext_level != fhe_level
                || p.evaluation_key_level != 0
                || p.gk.len() != rotations.len()
            {
                return Err(bad("Galois key levels"));
            }
            for g in &p.gk {
                self.check_ksk(e, g.ksk.as_ref(), fhe_level)?;
            }
            let key = EvaluationKey::from_bytes(b, self.params.inner()).map_err(Bfv::fhe_err(e))?;
            if rotations
                .iter()
                .any(|&k| !key.supports_column_rotation_by(self.column_step(k)))
            {
                return Err(bad("Galois key missing for a rotation step"));
            }
            galois.push(key);
        }
        let keys = BfvEvalKeys {
            id: self.id,
            key,
            slots,
            rotations,
            relin,
            galois,
        };
        check_keys_meet(&keys, req)?;
        Ok(keys)
    }

    fn ciphertext_size_limit(&self) -> u64 {
        3 * (self.poly_bytes() + 8) + 144
    }

    fn ciphertext_to_bytes(&self, ct: &BfvCiphertext) -> Result<Vec<u8>> {
        self.check_id(ct.id, OpKind::Encrypt)?;
        Ok(CIPHERTEXT.seal(self.id, &with_key_id(ct.key, &ct.inner.to_bytes())))
    }

    fn ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<BfvCiphertext> {
        let body = open(self, &CIPHERTEXT, bytes, self.ciphertext_size_limit())?;
        let (key, body) = split_key_id(&CIPHERTEXT, body)?;
        let proto: pb::Ciphertext = decode(&CIPHERTEXT, body)?;
        self.check_ciphertext(&CIPHERTEXT, &proto)?;
        let inner =
            Ciphertext::from_bytes(body, self.params.inner()).map_err(Bfv::fhe_err(&CIPHERTEXT))?;
        let level = Level(self.max_level().0 - proto.level);
        Ok(self.wrap(inner, level, key))
    }

    fn has_seeded_ciphertexts(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::he::{Counted, Rotation, Scale};

    /// The smallest secure set with two moduli: `N = 4096`, 109 bits.
    fn secure() -> Bfv {
        Bfv::new(
            BfvParams::builder()
                .degree(4096)
                .plaintext_modulus(40961)
                .moduli_sizes(&[54, 55])
                .build()
                .unwrap(),
        )
    }

    fn round_trip<S: HeWire<Value = i64>>(s: &S) {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let s2 = S::from_params_bytes(&s.params_to_bytes().unwrap()).unwrap();
        assert_eq!(s2.fingerprint(), s.fingerprint());
        let sk = s.generate_secret_key(&mut rng).unwrap();
        let sk2 = s2
            .secret_key_from_bytes(&s.secret_key_to_bytes(&sk).unwrap())
            .unwrap();
        let req = KeyRequirements::new()
            .with_relinearization()
            .with_rotations([Rotation(1)]);
        let keys = s.generate_eval_keys(&sk, &req, &mut rng).unwrap();
        let kb = s.eval_keys_to_bytes(&keys).unwrap();
        assert!(kb.len() as u64 <= s.eval_keys_size_limit(&req));
        let keys2 = s2.eval_keys_from_bytes(&kb, &req).unwrap();
        assert!(matches!(
            s2.eval_keys_from_bytes(&kb, &KeyRequirements::new()),
            Err(Error::Decode {
                reason: DecodeError::TooLarge { .. },
                ..
            })
        ));
        let pk = s.generate_public_key(&sk, &mut rng).unwrap();
        let pk2 = s2
            .public_key_from_bytes(&s.public_key_to_bytes(&pk).unwrap())
            .unwrap();
        let pt = s.encode(&[3, -4, 5], s.max_level(), Scale::ONE).unwrap();
        let up = s.encrypt_secret_to_bytes(&sk2, &pt, &mut rng).unwrap();
        let full = s
            .ciphertext_to_bytes(&s.encrypt(&pk2, &pt, &mut rng).unwrap())
            .unwrap();
        assert!(
            up.len() * 10 < full.len() * 6,
            "{} {}",
            up.len(),
            full.len()
        );
        for b in [&up, &full] {
            let ct = s2.fresh_ciphertext_from_bytes(b).unwrap();
            let sq = s2.mul_relin(&ct, &ct, &keys2).unwrap();
            let r = s2.rotate(&sq, Rotation(1), &keys2).unwrap();
            let back = s2
                .ciphertext_from_bytes(&s2.ciphertext_to_bytes(&r).unwrap())
                .unwrap();
            let out = s.decode(&s.decrypt(&sk, &back).unwrap()).unwrap();
            assert_eq!(&out[..2], &[16, 25]);
        }
    }

    #[test]
    fn round_trips_through_the_trait() {
        let b = secure();
        round_trip(&b);
        round_trip(&Counted::new(b));
    }

    #[test]
    fn corrupted_bytes_are_errors_not_panics() {
        let b = secure();
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let sk = b.generate_secret_key(&mut rng).unwrap();
        let pk = b.generate_public_key(&sk, &mut rng).unwrap();
        let req = KeyRequirements::new().with_relinearization();
        let keys = b.generate_eval_keys(&sk, &req, &mut rng).unwrap();
        let pt = b.encode(&[1, 2], b.max_level(), Scale::ONE).unwrap();
        let goods = [
            b.encrypt_secret_to_bytes(&sk, &pt, &mut rng).unwrap(),
            b.ciphertext_to_bytes(&b.encrypt(&pk, &pt, &mut rng).unwrap())
                .unwrap(),
            b.public_key_to_bytes(&pk).unwrap(),
            b.secret_key_to_bytes(&sk).unwrap().to_vec(),
            b.eval_keys_to_bytes(&keys).unwrap(),
            b.params_to_bytes().unwrap(),
        ];
        let mut refused = 0;
        for i in 0..600 {
            let mut x = goods[i % goods.len()].clone();
            match i % 4 {
                0 => x.truncate(rng.random_range(0..x.len())),
                1 => {
                    let k = rng.random_range(HEADER_LEN + 8..x.len());
                    x[k] ^= 1 << rng.random_range(0..8);
                }
                2 => {
                    for _ in 0..4 {
                        let k = rng.random_range(HEADER_LEN + 8..x.len());
                        x[k] = rng.random();
                    }
                }
                _ => {
                    let k = rng.random_range(0..x.len());
                    x[k] = 0xff;
                }
            }
            let results = [
                b.ciphertext_from_bytes(&x).map(|_| ()),
                b.fresh_ciphertext_from_bytes(&x).map(|_| ()),
                b.public_key_from_bytes(&x).map(|_| ()),
                b.secret_key_from_bytes(&x).map(|_| ()),
                b.eval_keys_from_bytes(&x, &req).map(|_| ()),
                Bfv::from_params_bytes(&x).map(|_| ()),
            ];
            for r in results {
                match r {
                    Ok(()) => {}
                    Err(Error::Decode { .. }) => refused += 1,
                    Err(e) => assert!(
                        matches!(
                            e,
                            Error::InvalidParameter { .. } | Error::InsecureParameters { .. }
                        ),
                        "{e}"
                    ),
                }
            }
        }
        assert!(refused > 2400, "{refused}");
    }
}
