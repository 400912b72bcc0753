"""Times SEAL 4.1 (through tenseal.sealapi, one thread) on the same CKKS
operations and parameters as examples/ckks_timings.rs; prints JSON (ms)."""
import json
import math
import os
import statistics
import sys
import time

import tenseal.sealapi as seal

REPS = int(os.environ.get("REPS", "7"))


def best(fn, reps=REPS):
    """Milliseconds per call: process CPU time, minimum over `reps` batches
    of calls lasting >= 20 ms each (as examples/ckks_timings.rs does)."""
    fn()
    t = time.perf_counter()
    fn()
    one = time.perf_counter() - t
    batch = max(1, min(10000, math.ceil(0.02 / max(one, 1e-7))))
    out = math.inf
    for _ in range(reps):
        c = time.process_time_ns()
        for _ in range(batch):
            fn()
        out = min(out, (time.process_time_ns() - c) / 1e6 / batch)
    return out, out


def time_set(log_n, moduli):
    n = 1 << log_n
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(n)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(n, moduli + [60]))
    ctx = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    keygen = seal.KeyGenerator(ctx)
    sk = keygen.secret_key()
    pk = seal.PublicKey()
    keygen.create_public_key(pk)
    rk = seal.RelinKeys()
    keygen.create_relin_keys(rk)
    gk = seal.GaloisKeys()
    # Galois elements of the left rotations by 1..8 (SEAL's generator is 3).
    keygen.create_galois_keys([pow(3, k, 2 * n) for k in range(1, 9)], gk)
    enc = seal.Encryptor(ctx, pk)
    dec = seal.Decryptor(ctx, sk)
    ev = seal.Evaluator(ctx)
    coder = seal.CKKSEncoder(ctx)
    scale = 2.0 ** 40
    values = [(i % 17) / 17.0 for i in range(coder.slot_count())]
    pt = seal.Plaintext()
    coder.encode(values, scale, pt)
    ct, ct2 = seal.Ciphertext(), seal.Ciphertext()
    enc.encrypt(pt, ct)
    enc.encrypt(pt, ct2)
    prod = seal.Ciphertext()
    ev.multiply(ct, ct2, prod)
    ev.relinearize_inplace(prod, rk)
    terms = []
    for _ in range(16):
        c = seal.Ciphertext()
        enc.encrypt(pt, c)
        terms.append(c)
    scalars = [i * 0.1 - 0.75 for i in range(16)]
    out = {}

    def encode_encrypt():
        p, c = seal.Plaintext(), seal.Ciphertext()
        coder.encode(values, scale, p)
        enc.encrypt(p, c)

    def decrypt_decode():
        p = seal.Plaintext()
        dec.decrypt(ct, p)
        coder.decode_double(p)

    def add():
        c = seal.Ciphertext()
        ev.add(ct, ct2, c)

    def mul_plain():
        c = seal.Ciphertext()
        ev.multiply_plain(ct, pt, c)

    def mul_scalar():
        # SEAL has no scalar product without a plaintext: encode the constant.
        p, c = seal.Plaintext(), seal.Ciphertext()
        coder.encode(0.37, ct.parms_id(), scale, p)
        ev.multiply_plain(ct, p, c)

    def mul_relin():
        c = seal.Ciphertext()
        ev.multiply(ct, ct2, c)
        ev.relinearize_inplace(c, rk)

    def rescale():
        c = seal.Ciphertext()
        ev.rescale_to_next(prod, c)

    def rotate():
        c = seal.Ciphertext()
        ev.rotate_vector(ct, 1, gk, c)

    def rotate_many():
        for k in range(1, 9):
            c = seal.Ciphertext()
            ev.rotate_vector(ct, k, gk, c)

    def dot_scalar():
        acc = None
        for t, s in zip(terms, scalars):
            p, c = seal.Plaintext(), seal.Ciphertext()
            coder.encode(s, t.parms_id(), scale, p)
            ev.multiply_plain(t, p, c)
            if acc is None:
                acc = c
            else:
                ev.add_inplace(acc, c)

    for name, fn in [
        ("encode_encrypt", encode_encrypt),
        ("decrypt_decode", decrypt_decode),
        ("add", add),
        ("mul_plain", mul_plain),
        ("mul_scalar", mul_scalar),
        ("mul_relin", mul_relin),
        ("rescale", rescale),
        ("rotate", rotate),
        ("rotate_many_8", rotate_many),
        ("dot_scalar_16", dot_scalar),
    ]:
        out[name] = best(fn)[0]
    # Precision over TRIALS fresh encryptions (pooled), as in
    # examples/ckks_timings.rs: relative L2 error (log2) of public- and
    # secret-key encryption and of one mul + relin + rescale, and the largest
    # absolute error of the product.
    trials = 8
    sym = seal.Encryptor(ctx, pk, sk)
    squares = [v * v for v in values]

    def decoded(c):
        p = seal.Plaintext()
        dec.decrypt(c, p)
        return coder.decode_double(p)

    def sq_err(got, want):
        return sum((g - w) ** 2 for g, w in zip(got, want))

    pk_e = sk_e = mul_e = 0.0
    mul_max = 0.0
    for _ in range(trials):
        a, b, c = seal.Ciphertext(), seal.Ciphertext(), seal.Ciphertext()
        enc.encrypt(pt, a)
        enc.encrypt(pt, b)
        sym.encrypt_symmetric(pt, c)
        pk_e += sq_err(decoded(a), values)
        sk_e += sq_err(decoded(c), values)
        m, r = seal.Ciphertext(), seal.Ciphertext()
        ev.multiply(a, b, m)
        ev.relinearize_inplace(m, rk)
        ev.rescale_to_next(m, r)
        got = decoded(r)
        mul_e += sq_err(got, squares)
        mul_max = max(mul_max, max(abs(g - w) for g, w in zip(got, squares)))

    def rel(e, want):
        return 0.5 * math.log2(e / (trials * sum(w * w for w in want)))

    out["enc_pk_rel_err"] = rel(pk_e, values)
    out["enc_sk_rel_err"] = rel(sk_e, values)
    out["mul_rel_err"] = rel(mul_e, squares)
    out["mul_max_abs_err"] = math.log2(mul_max)
    return out


if __name__ == "__main__":
    print(json.dumps({
        "13": time_set(13, [60, 40, 40]),
        "14": time_set(14, [60, 40, 40, 40, 40, 40, 40]),
    }))
