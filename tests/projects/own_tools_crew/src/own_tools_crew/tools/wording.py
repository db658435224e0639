def mirrored(text: str) -> str:
    return text[::-1]
