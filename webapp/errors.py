"""The shop's own error pages: every HTTP error a browser meets is the shop's page in Chinese,
with its status code, what went wrong and where to go next; JSON clients get JSON."""

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, default_exceptions

#: What a shopper reads as the page's title, per status.
TITLES = {
    400: "请求有误",
    403: "无权访问",
    404: "页面不存在",
    405: "不支持的请求",
    409: "无法完成此操作",
    410: "已经结束",
    413: "请求过大",
    429: "请求过于频繁",
    500: "服务器出错了",
    503: "服务暂不可用",
}
#: What a shopper reads when the error says nothing more than its status.
MESSAGES = {
    400: "请求缺少内容或内容有误,请返回重试。",
    403: "您没有权限访问此页面。",
    404: "您要找的页面或订单不存在。",
    405: "此地址不接受这种请求。",
    409: "此操作与订单当前的状态冲突,请查看订单的最新状态。",
    429: "请稍后再试。",
    500: "请求没有完成,请稍后再试。",
    503: "请稍后再试。",
}


def wants_json() -> bool:
    """The JSON API and clients preferring JSON get JSON; browsers, which prefer HTML, pages."""
    accept = request.accept_mimetypes
    return request.path.startswith("/api/") or accept.quality("text/html") <= accept.quality(
        "application/json"
    )


def message_of(error: HTTPException) -> str:
    """The error's own description when the code gave one, else the shopper's sentence."""
    standard = default_exceptions.get(error.code)
    if error.description and (standard is None or error.description != standard.description):
        return error.description
    return MESSAGES.get(error.code, "请求没有完成。")


def error_page(error: HTTPException, **context):
    """``error`` as the shop's page (or JSON), with its own status code."""
    if wants_json():
        return jsonify(error=error.name.lower().replace(" ", "_"), message=message_of(error)), error.code
    return render_template(
        "error.html",
        code=error.code,
        title=TITLES.get(error.code, error.name),
        message=message_of(error),
        **context,
    ), error.code


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, error_page)
