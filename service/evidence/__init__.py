"""Photo evidence: untrusted uploads cleaned into safe, metadata-free images, and the stores that keep them."""
