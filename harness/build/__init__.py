"""Stage 3, build: the Docker engine, images and containers, and the fetchmail build itself."""
