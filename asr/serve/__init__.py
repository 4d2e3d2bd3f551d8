"""`asr serve`: a transcription server that answers OpenAI's audio API (`POST /v1/audio/transcriptions`), so any
OpenAI client works unchanged, with a page at `/` to try the model in a browser.

    app.py       the routes, the API key, the size limit and the one log line per request
    requests.py  the form fields of a transcription request, checked as OpenAI checks them
    responses.py transcripts as OpenAI's response formats, and errors in OpenAI's shape
    batcher.py   the one thread that runs the model: requests that arrive together are decoded as one batch
    process.py   `asr serve` in a child process, waited for until it answers (tests, tools/bench_serve.py)
    static/      the page: plain HTML, CSS and JavaScript, no build step
"""
