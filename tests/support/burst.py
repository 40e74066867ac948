"""A burst of flash-sale clicks from the client host: ``python burst.py PLAN ANSWERS``.

Run inside a namespace of tests/support/hosts.py (standard library only: it is started as a
script, outside the test's imports). PLAN is JSON: ``url`` (the balancer), ``threads``,
``clicks`` ([member, session cookie, source address], in order). Each thread keeps one
connection per source address; a click whose connection fails is recorded, not sent again
(a second try would be a second click). ANSWERS gets [member, source, HTTP status (0: no
answer), the JSON answer or null, the error or null] per click; stdout gets the number of
clicks answered so far after every hundred.
"""

import http.client
import json
import queue
import sys
import threading
from urllib.parse import urlsplit

PROGRESS_EVERY = 100


def main(plan_path: str, answers_path: str) -> None:
    with open(plan_path) as plan_file:
        plan = json.load(plan_file)
    url = urlsplit(plan["url"])
    todo = queue.Queue()
    for click in plan["clicks"]:
        todo.put(click)
    answers, lock = [], threading.Lock()

    def shopper():
        connections = {}
        while True:
            try:
                member, cookie, source = todo.get_nowait()
            except queue.Empty:
                return
            answer = _click(connections, url, member, cookie, source)
            with lock:
                answers.append(answer)
                if len(answers) % PROGRESS_EVERY == 0:
                    print(len(answers), flush=True)

    threads = [threading.Thread(target=shopper) for _ in range(plan["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open(answers_path, "w") as answers_file:
        json.dump(answers, answers_file)


def _click(connections, url, member, cookie, source):
    connection = connections.get(source)
    if connection is None:
        connection = connections[source] = http.client.HTTPConnection(
            url.hostname, url.port or 80, timeout=30, source_address=(source, 0)
        )
    try:
        connection.request(
            "GET", url.path, headers={"Accept": "application/json", "Cookie": f"session={cookie}"}
        )
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        connection.close()
        del connections[source]
        return [member, source, 0, None, repr(error)]
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    return [member, source, response.status, answer, None]


if __name__ == "__main__":
    main(*sys.argv[1:])
