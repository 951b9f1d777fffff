"""Media floor: probing, content ids, frame decoding, image encoding, ffmpeg. No stage logic here."""


class MediaError(Exception):
    """A media file that cannot be used. `reason` is a short stable code for the rejects table."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message
