//! Unit tests of the KuCoin adapter.
