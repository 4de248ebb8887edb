"""gancli's version, in a module of its own so that gancli's modules can read it without the package façade."""
__version__ = "0.2.0"
