//! Importing trained networks: ONNX models and `safetensors` weight files.
//!
//! - [`onnx`] reads an ONNX model (as `torch.onnx.export` or the Keras
//!   converter `tf2onnx` write them) into a [`Network`](crate::model::Network).
//!   [`onnx::from_path`] also reads the weights PyTorch's exporter writes to
//!   `<model>.onnx.data` ([`external_data`]) and returns an
//!   [`ImportReport`] of what was dropped or folded.
//! - [`safetensors`] reads a `safetensors` weight file into the layers of an
//!   existing [`Network`](crate::model::Network) by tensor name.
//!
//! What is supported, how operators map onto the IR, and how to regenerate
//! the protobuf types and the test fixtures: `docs/import.md`.

pub mod external_data;
pub mod onnx;
#[allow(
    dead_code,
    missing_docs,
    clippy::all,
    clippy::pedantic,
    rustdoc::all,
    reason = "generated once by tools/gen-onnx-proto from onnx.proto (see its header); \
              the library reads only part of the schema, doc comments come from the .proto"
)]
pub(crate) mod onnx_proto;
pub mod report;
pub mod safetensors;

pub use report::{ImportNote, ImportReport, Imported, NhwcFold};

/// An IEEE half-precision value (bits) as `f32`.
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// A bfloat16 value (bits) as `f32`.
pub(crate) fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_conversions() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
    }
}
