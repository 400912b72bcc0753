//! What a downstream crate writes for private inference, public paths only:
//! a server thread holds the plan (the weights) behind a 127.0.0.1 socket;
//! the client gets the view, makes keys, uploads seeded ciphertexts and
//! decrypts the bytes that come back. CKKS and BFV, equal predictions.
#![allow(clippy::unwrap_used, reason = "test")]
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use mofhei::prelude::*;
use rand::SeedableRng;

fn send(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(&(bytes.len() as u64).to_le_bytes()).unwrap();
    s.write_all(bytes).unwrap();
}

fn recv(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 8];
    s.read_exact(&mut len).unwrap();
    let mut bytes = vec![0; u64::from_le_bytes(len).min(1 << 30) as usize];
    s.read_exact(&mut bytes).unwrap();
    bytes
}

/// Server: view out; evaluation keys and upload in; output bytes out.
fn serve<S: HeWire>(scheme: S, plan: Plan, listener: TcpListener) {
    let (mut s, _) = listener.accept().unwrap();
    send(
        &mut s,
        &ClientView::new(&plan, &scheme).unwrap().to_bytes().unwrap(),
    );
    let server = Server::from_key_bytes(Arc::new(scheme), plan, &recv(&mut s)).unwrap();
    let (out, _) = server.run_bytes(&recv(&mut s)).unwrap();
    send(&mut s, &out);
}

/// Client: knows the server's address only.
fn round_trip<S: HeWire + Send + 'static>(scheme: S, plan: Plan, x: &Tensor) -> Tensor {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let server = std::thread::spawn(move || serve(scheme, plan, listener));
    let view = Arc::new(ClientView::from_bytes(&recv(&mut s)).unwrap());
    let scheme: Arc<S> = Arc::new(view.scheme().unwrap());
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let (client, keys) = Client::from_view(scheme.clone(), view, &mut rng).unwrap();
    send(&mut s, &scheme.eval_keys_to_bytes(&keys).unwrap());
    send(&mut s, &client.encrypt_to_bytes(x, &mut rng).unwrap());
    let y = client.decrypt_bytes(&recv(&mut s)).unwrap();
    server.join().unwrap();
    y
}

fn net_and_inputs() -> (Network, Tensor) {
    let net = zoo::mlp(&[16, 8, 4], Activation::Square, 3).unwrap();
    let data = (0..8 * 16).map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0);
    (net, Tensor::new(vec![8, 16], data.collect()).unwrap())
}

#[test]
fn ckks_round_trip_over_a_socket() {
    let (net, x) = net_and_inputs();
    let plan = compile(&net, &Batch, &CompileOptions::default()).unwrap();
    let y = round_trip(Ckks::for_plan(&plan).unwrap(), plan, &x);
    assert_eq!(argmax_rows(&y), argmax_rows(&net.forward(&x).unwrap()));
}

#[cfg(feature = "bfv")]
#[test]
fn bfv_round_trip_over_a_socket() {
    let (net, x) = net_and_inputs();
    let cfg = QuantConfig {
        weight_bits: 5,
        input_bits: 5,
        ..QuantConfig::int8(1.0)
    };
    let q = QuantizedNetwork::quantize(&net, &cfg).unwrap();
    let plan = compile_quantized(&q, &Batch, &CompileOptions::default()).unwrap();
    let y = round_trip(Bfv::for_plan(&plan).unwrap(), plan, &x);
    let want = x
        .data()
        .chunks(16)
        .flat_map(|s| q.dequantize_output(&q.forward(&q.quantize_input(s).unwrap()).unwrap()));
    assert_eq!(y.data(), want.collect::<Vec<f32>>(), "exact integers");
}
