//! liner-forum
