"""jobgate's benchmark harness (kept out of the test suite): see bench/README.md."""
