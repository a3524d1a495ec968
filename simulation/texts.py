"""The free text a generated sheet draws from: opinions, reported problems, and the options a
page built for another questionnaire version might send."""

from __future__ import annotations

from typing import Final

OPINIONS: Final[tuple[str, ...]] = (
    "希望加强个人信息保护，严厉打击非法买卖个人信息的行为。",
    "建议加大对电信网络诈骗的打击力度，多发布典型案例提醒群众。",
    "骚扰电话和垃圾短信还是太多，希望运营商加强拦截。",
    "希望对App过度索取权限的问题进一步整治。",
    "建议在社区和学校多开展网络安全知识讲座。",
    "希望平台对网络暴力内容处理得更及时一些。",
    "老年人容易上当受骗，建议针对老年人开展防诈骗宣传。",
    "网购时遇到过虚假客服，希望平台加强身份核验。",
    "未成年人沉迷网络游戏的问题仍需持续关注。",
    "希望举报渠道更加便捷，处理结果能及时反馈。",
    "整体感觉网络环境比往年有明显改善。",
    "建议加强对公共WiFi安全的管理和提示。",
    "希望对网络谣言及时辟谣，信息公开更透明。",
    "部分网站仍有弹窗广告和诱导下载，希望治理。",
    "快递单上的个人信息容易泄露，建议推广隐私面单。",
    "希望加强对短视频平台不良信息的审核。",
    "建议企业落实数据安全责任，发生泄露要及时告知用户。",
    "人脸识别等生物信息的收集使用要有更严格的规范。",
)
PROBLEMS: Final[tuple[str, ...]] = (
    "接到过冒充客服的诈骗电话，称要办理退款。",
    "微信账号曾被盗用，向好友借钱。",
    "注册某App后频繁收到推销短信。",
    "在二手平台交易时遇到过要求线下转账的骗子。",
    "手机里被装了来历不明的软件，自动扣费。",
    "收到过带钓鱼链接的短信，假冒银行积分兑换。",
    "孩子玩游戏时被诱导充值。",
    "投递简历后个人信息被泄露，接到大量推销电话。",
)
# Answers a page built for another questionnaire version might send.
STALE_OPTIONS: Final[tuple[str, ...]] = ("不清楚", "其他（请注明）", "option-x")
