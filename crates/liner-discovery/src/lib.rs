//! liner-discovery
