"""Where accounts send: each channel is one module behind the domain's `Channel` port."""
