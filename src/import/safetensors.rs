//! Reading `safetensors` weight files into an existing network.
