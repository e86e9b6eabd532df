"""The StyleGAN task kinds: each a pydantic params model and `run(params, sink) -> summary`."""
