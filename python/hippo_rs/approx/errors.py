"""The errors of the ``hippo-rs approx`` job."""


class InputError(Exception):
    """Bad user input: reported as one line on stderr and exit status 2."""


class Cancelled(Exception):
    """A measure's run was stopped because another one failed or the user interrupted."""
