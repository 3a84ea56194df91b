"""Errors raised on bad user input; messages name the offending file or value."""


class InputError(ValueError):
    """A frame, region, file or option given by the user cannot be used."""
