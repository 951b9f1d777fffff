"""Media floor: probing, content ids, frame decoding, image encoding, ffmpeg. No stage logic here."""


class MediaError(Exception):
    """A media file that cannot be used. `reason` is a short stable code for the rejects table."""

    def __init__(self, reason: str, message: str, detail: dict | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail or {}   # the reject's detail: the figures the message quotes, for a filter to read
