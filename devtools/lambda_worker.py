"""One Lambda "container": runs the handler from an extracted archive, one event per line.

Started as ``python -I -S lambda_worker.py ARCHIVE_DIR BOTO_DIR``, so that only the
archive, boto3 (as the Lambda runtime ships it) and the standard library are importable.
Reads JSON events on stdin; writes one JSON line per event: {"result": ...} or
{"error": {"errorMessage", "errorType", "stackTrace"}}, the shape Lambda's runtime gives.
"""

import json
import sys
import time
import traceback


def main() -> None:
    archive, boto = sys.argv[1], sys.argv[2]
    sys.path[:] = [archive, boto, *[p for p in sys.path[1:] if "site-packages" not in p]]
    started = time.perf_counter()
    import handler

    import_ms = (time.perf_counter() - started) * 1000
    print(json.dumps({"ready": True, "import_ms": import_ms}), flush=True)

    class Context:
        aws_request_id = "local"
        invoked_function_arn = ""

    for line in sys.stdin:
        request = json.loads(line)
        Context.aws_request_id = request["request_id"]
        Context.invoked_function_arn = request["invoked_function_arn"]
        logs: list[str] = []
        stdout, sys.stdout = sys.stdout, _Capture(logs)
        try:
            reply = {"result": handler.handler(request["event"], Context())}
        except Exception as error:
            frames = traceback.extract_tb(error.__traceback__)[1:]  # as Lambda: from the handler on
            reply = {
                "error": {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "stackTrace": traceback.format_list(frames),
                }
            }
        finally:
            sys.stdout = stdout
        reply["logs"] = logs
        print(json.dumps(reply), flush=True)


class _Capture:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> int:
        self.lines.extend(line for line in text.splitlines() if line)
        return len(text)

    def flush(self) -> None:
        pass


if __name__ == "__main__":
    main()
