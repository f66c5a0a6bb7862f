"""Places: building keys from free-text addresses, and the index of recent tickets per place (重复、冒头就打)."""
