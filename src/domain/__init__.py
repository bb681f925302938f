"""Pure domain core: pass model, JS-exact payload hash, diff, free-ticket and timeout policy.

Standard library only; the clock is always a parameter.
"""
