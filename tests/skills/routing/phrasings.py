"""A small bilingual intent set made from templates: training and test phrasings never share a slot value."""

from __future__ import annotations

TEMPLATES: dict[str, list[str]] = {
    "weather": [
        "what's the weather like in {city}",
        "will it rain in {city} tomorrow",
        "is it going to be cold in {city} this weekend",
        "forecast for {city} please",
        "{city}明天天气怎么样",
        "{city}会下雨吗",
        "查一下{city}的天气预报",
        "{city}这周末冷不冷",
    ],
    "alarm": [
        "wake me up at {time}",
        "set an alarm for {time}",
        "please ring an alarm at {time} tomorrow",
        "I need an alarm at {time}",
        "明天{time}叫我起床",
        "帮我定一个{time}的闹钟",
        "设置闹钟{time}",
        "{time}提醒我起床",
    ],
    "leave_request": [
        "I want to take {days} days off",
        "apply for {days} days of annual leave",
        "request sick leave for {days} days",
        "how do I ask for {days} days of vacation",
        "我想请{days}天假",
        "帮我申请{days}天年假",
        "我要请{days}天病假",
        "下周请假{days}天怎么申请",
    ],
    "book_room": [
        "book a meeting room for {people} people",
        "reserve a conference room for {people}",
        "I need a room for a meeting with {people} colleagues",
        "find a free meeting room for {people} people this afternoon",
        "帮我订一个{people}人的会议室",
        "预定会议室，{people}个人",
        "找一间能坐{people}人的会议室",
        "下午要开会，订个{people}人的房间",
    ],
    "expense": [
        "how do I get reimbursed for {item}",
        "submit an expense claim for {item}",
        "can I expense {item}",
        "where do I upload the receipt for {item}",
        "{item}怎么报销",
        "我要报销{item}的费用",
        "{item}的发票在哪里提交",
        "{item}可以报销吗",
    ],
    "it_support": [
        "my {device} is not working",
        "I can't connect my {device} to the network",
        "the {device} keeps crashing",
        "who can fix my {device}",
        "我的{device}坏了",
        "{device}连不上网络",
        "{device}一直死机怎么办",
        "谁能帮我修一下{device}",
    ],
}

SLOTS_TRAIN = {
    "city": ["Beijing", "Shanghai", "北京", "上海"],
    "time": ["7am", "6:30", "七点", "六点半"],
    "days": ["2", "3", "两", "三"],
    "people": ["5", "8", "五", "八"],
    "item": ["taxi", "hotel", "打车", "酒店"],
    "device": ["laptop", "printer", "电脑", "打印机"],
}
SLOTS_TEST = {
    "city": ["Hangzhou", "深圳"],
    "time": ["8am", "八点"],
    "days": ["5", "四"],
    "people": ["12", "十"],
    "item": ["train tickets", "机票"],
    "device": ["monitor", "显示器"],
}

OUT_OF_SCOPE = [
    "tell me a joke about penguins", "what is the capital of Australia", "who won the football match",
    "recommend a good science fiction novel", "how many calories are in an apple", "sing me a song",
    "讲个笑话", "澳大利亚的首都是哪里", "推荐一本科幻小说", "一个苹果有多少卡路里",
    "what's your favourite colour", "how tall is mount everest", "珠穆朗玛峰有多高", "你喜欢什么颜色",
]
OUT_OF_SCOPE_TEST = [
    "asdf qwer zxcv uiop", "purple monkey dishwasher elephant", "吃葡萄不吐葡萄皮", "the mitochondria is the powerhouse of the cell",
]


def _fill(slots: dict[str, list[str]]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for intent, templates in TEMPLATES.items():
        for template in templates:
            key = template[template.index("{") + 1 : template.index("}")]
            is_zh = any("\u4e00" <= ch <= "\u9fff" for ch in template)
            values = [v for v in slots[key] if any("\u4e00" <= ch <= "\u9fff" for ch in v) == is_zh or v.isdigit()]
            rows.extend({"text": template.format(**{key: v}), "intent": intent} for v in values)
    return rows


def train_rows(with_oos: bool = False) -> list[dict[str, str]]:
    rows = _fill(SLOTS_TRAIN)
    if with_oos:
        rows += [{"text": t, "intent": "oos"} for t in OUT_OF_SCOPE]
    return rows


def held_out_rows() -> list[dict[str, str]]:
    return _fill(SLOTS_TEST)


def english(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if not any("\u4e00" <= ch <= "\u9fff" for ch in r["text"])]


def chinese(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if any("\u4e00" <= ch <= "\u9fff" for ch in r["text"])]


__all__ = ["OUT_OF_SCOPE_TEST", "chinese", "english", "held_out_rows", "train_rows"]
