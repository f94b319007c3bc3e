"""HTTP bodies and requests as clients send them, with only the standard library."""

import json
import urllib.request


def multipart(data, boundary="testsupport-boundary", filename="digit.png", field="file"):
    """A one-file multipart/form-data body and its Content-Type."""
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post_upload(base_url, data, path="/upload", timeout=60, filename="digit.png"):
    """POST one image as field `file`; the decoded JSON answer."""
    body, content_type = multipart(data, filename=filename)
    request = urllib.request.Request(base_url + path, data=body, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())
