"""Load tests: drive a server with many clients and demo sets; TTFT, throughput, cache hits."""
