"""gancli benchmarks: training/sampling throughput against a plain PyTorch loop, CLI latency, memory,
2-D mode coverage and quality at a fixed CPU budget. Run with ``python -m benchmarks run --quick|--full``."""
