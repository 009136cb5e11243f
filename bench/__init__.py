"""Benchmark of regcli against SimpleITK, OpenCV ECC and pystackreg (see bench/README.md)."""
