"""The area registry (片区 → 居民区 → 网格) with its people and address patterns, and where each ticket sits in it."""
