"""Write-ahead log: segments of checksummed, compressed records; checkpoints."""
