"""veriloss: losses, exact low-FAR evaluation and training for biometric verification (face and speaker)."""

__version__ = "0.1.0"
