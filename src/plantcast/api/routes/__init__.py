"""One router per resource; shared parameter helpers in ``common``."""
