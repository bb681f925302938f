"""Helpers every adapter may use (logging, exact JSON text); they import no adapter."""
