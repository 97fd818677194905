"""Static material for the demo data set (``python manage.py seed_demo``).

Kept apart from ``demo.seed`` so the generator reads as steps, not as word lists. Every name
here is realistic Chinese business data; nothing in it is used outside the demo.
"""

from __future__ import annotations

DEMO_PASSWORD = "TagDesk-demo-2026"  # noqa: S105 — printed at the end of seed_demo; demo only

# (name, parent name or None)
DEPARTMENTS = [
    ("市场部", None),
    ("销售部", None),
    ("华东销售组", "销售部"),
    ("华南销售组", "销售部"),
    ("客服部", None),
    ("财务部", None),
    ("运营部", None),
    ("内容运营组", "运营部"),
]

# (username, display name, department or None, role) — role: superuser, tag_admin, leader, staff
USERS = [
    ("admin", "系统管理员", None, "superuser"),
    ("tagadmin", "林静", "运营部", "tag_admin"),
    ("market_li", "李娜", "市场部", "leader"),
    ("market_he", "何欣", "市场部", "staff"),
    ("sales_wang", "王磊", "销售部", "leader"),
    ("sales_chen", "陈晨", "华东销售组", "staff"),
    ("sales_liu", "刘洋", "华南销售组", "staff"),
    ("service_zhao", "赵敏", "客服部", "leader"),
    ("service_xu", "徐静", "客服部", "staff"),
    ("finance_sun", "孙丽", "财务部", "leader"),
    ("ops_zhou", "周杰", "运营部", "leader"),
    ("ops_wu", "吴倩", "内容运营组", "staff"),
]

# Customers belong to these departments, owned by their members (weights: share of customers).
CUSTOMER_DEPARTMENTS = [
    ("销售部", 10),
    ("华东销售组", 30),
    ("华南销售组", 25),
    ("客服部", 15),
    ("市场部", 12),
    ("运营部", 5),
    ("内容运营组", 3),
]
# Large data sets get extra (unnamed) employees so no one owns a hundred thousand customers.
EXTRA_EMPLOYEE_DEPARTMENTS = ["华东销售组", "华南销售组", "客服部", "市场部"]

# Tag groups: name -> (kind, exclusive, parent, share of customers with a tag of it, most tags a
# customer gets from it, [tags most popular first]). Popularity within a group is Zipf-like.
CORPORATE = "corporate"
AUTO = "auto"
TAXONOMY = [
    (
        "客户来源",
        CORPORATE,
        False,
        None,
        0.92,
        1,
        [
            "官网",
            "转介绍",
            "展会",
            "抖音",
            "微信公众号",
            "小红书",
            "线下门店",
            "电话营销",
            "搜索广告",
            "地推活动",
        ],
    ),
    ("意向", CORPORATE, True, None, 0.75, 1, ["中", "高", "低", "沉睡"]),
    (
        "客户规模",
        CORPORATE,
        True,
        None,
        0.6,
        1,
        ["个人", "小微企业", "中型企业", "大型企业", "集团客户"],
    ),
    (
        "所处行业",
        CORPORATE,
        False,
        None,
        0.55,
        1,
        [
            "互联网",
            "教育培训",
            "零售",
            "制造业",
            "医疗健康",
            "金融",
            "餐饮",
            "房地产",
            "母婴",
            "美妆个护",
            "物流",
            "汽车",
            "文化传媒",
            "农业",
            "政府机构",
        ],
    ),
    (
        "职位",
        CORPORATE,
        False,
        None,
        0.45,
        1,
        [
            "采购经理",
            "总经理",
            "店长",
            "市场总监",
            "创始人",
            "技术负责人",
            "财务主管",
            "行政",
            "普通员工",
            "学生",
        ],
    ),
    (
        "客户关系",
        CORPORATE,
        False,
        None,
        0.6,
        2,
        ["新客户", "老客户", "重要客户", "潜在流失", "合作伙伴", "黑名单"],
    ),
    ("消费等级", CORPORATE, True, None, 0.65, 1, ["中消费", "低消费", "高消费"]),
    (
        "活动",
        CORPORATE,
        False,
        None,
        0.55,
        3,
        [
            "双十一预热",
            "618大促",
            "参加过38促销",
            "直播间抽奖",
            "新品发布会",
            "线下沙龙",
            "年终答谢会",
            "会员日",
        ],
    ),
    (
        "付款方式",
        CORPORATE,
        False,
        None,
        0.5,
        2,
        ["微信支付", "支付宝", "银行转账", "信用卡", "货到付款"],
    ),
    (
        "促销活动",
        CORPORATE,
        False,
        None,
        0.45,
        2,
        ["满减券", "折扣券", "赠品", "限时秒杀", "拼团", "老带新奖励"],
    ),
    ("客户偏好", CORPORATE, False, None, 0.0, 0, []),
    (
        "商品偏好",
        CORPORATE,
        False,
        "客户偏好",
        0.7,
        3,
        [
            "儿童玩具",
            "母婴用品",
            "数码产品",
            "美妆护肤",
            "运动户外",
            "食品生鲜",
            "家居日用",
            "图书文具",
            "服装鞋包",
            "宠物用品",
        ],
    ),
    (
        "饮食偏好",
        CORPORATE,
        False,
        "客户偏好",
        0.25,
        2,
        ["不吃香菜", "减脂期", "素食", "无辣不欢", "牛奶过敏", "不要香菜", "海鲜过敏"],
    ),
    (
        "兴趣爱好",
        CORPORATE,
        False,
        None,
        0.6,
        3,
        [
            "旅游",
            "美食",
            "健身",
            "摄影",
            "阅读",
            "电影",
            "音乐",
            "篮球",
            "足球",
            "羽毛球",
            "乒乓球",
            "游泳",
            "跑步",
            "瑜伽",
            "骑行",
            "登山",
            "钓鱼",
            "露营",
            "滑雪",
            "网球",
            "高尔夫",
            "围棋",
            "象棋",
            "书法",
            "绘画",
            "钢琴",
            "吉他",
            "舞蹈",
            "茶艺",
            "咖啡",
            "烘焙",
            "烹饪",
            "园艺",
            "宠物",
            "收藏",
            "手工",
            "编程",
            "电竞",
            "动漫",
            "汉服",
            "剧本杀",
            "桌游",
            "徒步",
            "潜水",
            "冲浪",
            "马拉松",
            "太极",
            "广场舞",
            "戏曲",
            "相声",
            "古玩",
            "红酒",
            "白酒",
            "雪茄",
            "汽车改装",
            "无人机",
            "航模",
            "天文",
            "观鸟",
            "插花",
        ],
    ),
    (
        "价值分层",
        AUTO,
        False,
        None,
        0.0,
        0,
        # 推荐达人 and 高互动客户 have no demo rule: "new rule from a template" starts there.
        [
            "VIP-钻石级",
            "VIP-金卡",
            "高频次购买者",
            "价格敏感",
            "高客单价",
            "复购客户",
            "推荐达人",
            "高互动客户",
        ],  # fmt: skip
    ),
    ("生命周期", AUTO, True, None, 0.0, 0, ["新客期", "活跃客户", "沉默客户", "流失预警"]),
    (
        "RFM分群",
        AUTO,
        False,
        None,
        0.0,
        0,
        ["重要价值客户", "重要发展客户", "重要保持客户", "重要挽留客户", "一般价值客户"],
    ),
]
# Shown in the admin as a proposal awaiting approval and as a retired tag.
PENDING_TAG = ("商品偏好", "智能家居", "sales_chen")
ARCHIVED_TAG = ("活动", "2025双十二")
# A temporary tag: assignments expire (docs/taxonomy.md#assignments-and-history).
EXPIRING_TAG = ("活动", "参加过38促销")

PERSONAL_OWNERS = ["sales_wang", "sales_chen", "service_zhao", "market_li"]
PERSONAL_GROUP = "我的客户标记"
PERSONAL_TAGS = ["重点跟进", "已报价", "待回访", "爱砍价", "老乡", "需要发票"]

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
    "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱"
)
COMPOUND_SURNAMES = ["欧阳", "司马", "上官", "诸葛", "东方", "慕容"]
GIVEN_CHARS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉斌宇浩凯健俊帆帅"
    "旭宁婷雪琳晨欣怡然佳琪梓涵子轩思雨诗语嘉宁一诺浩然宇轩雨桐若曦梦瑶天佑博文志强建国海燕春梅晓东"
)
CITIES = [
    "上海",
    "北京",
    "深圳",
    "杭州",
    "广州",
    "成都",
    "武汉",
    "南京",
    "苏州",
    "西安",
    "重庆",
    "长沙",
]
COMPANY_WORDS = [
    "星辰",
    "华信",
    "博远",
    "云帆",
    "启明",
    "鼎盛",
    "恒通",
    "锦程",
    "泰和",
    "优品",
    "智联",
    "新禾",
    "宏达",
    "众诚",
    "嘉禾",
    "瑞丰",
]
COMPANY_KINDS = [
    "科技",
    "贸易",
    "文化传媒",
    "教育咨询",
    "餐饮管理",
    "电子商务",
    "医疗器械",
    "母婴用品",
    "信息技术",
    "供应链管理",
]
REMARKS = [
    "",
    "",
    "",
    "",
    "",
    "需要开发票",
    "老客户介绍",
    "周末联系",
    "只接受微信沟通",
    "VIP客户",
    "对价格敏感",
    "门店自提",
]
MOBILE_PREFIXES = [
    130,
    131,
    132,
    133,
    134,
    135,
    136,
    137,
    138,
    139,
    150,
    151,
    152,
    155,
    156,
    157,
    158,
    159,
    166,
    176,
    177,
    178,
    180,
    181,
    182,
    183,
    185,
    186,
    187,
    188,
    189,
    191,
    198,
    199,
]

PRODUCTS = {
    "儿童玩具": ["乐高积木城市系列", "遥控越野车", "儿童绘本套装", "磁力片", "毛绒玩偶"],
    "母婴用品": ["婴儿纸尿裤", "奶粉3段", "婴儿推车", "儿童安全座椅", "吸奶器"],
    "数码产品": ["蓝牙耳机", "智能手表", "平板电脑", "充电宝", "机械键盘"],
    "美妆护肤": ["保湿面霜", "防晒霜", "口红礼盒", "精华液", "面膜套装"],
    "运动户外": ["跑步鞋", "瑜伽垫", "登山包", "露营帐篷", "运动手环"],
    "食品生鲜": ["有机牛奶", "进口车厘子", "坚果礼盒", "五常大米", "咖啡豆"],
    "家居日用": ["乳胶枕", "四件套", "收纳箱", "香薰机", "不粘锅"],
    "图书文具": ["钢笔礼盒", "手账本", "畅销小说", "考研资料", "水彩颜料"],
    "服装鞋包": ["羽绒服", "真丝衬衫", "双肩包", "牛仔裤", "运动卫衣"],
}
PRICES = [
    "9.90",
    "19.90",
    "29.90",
    "39.00",
    "49.00",
    "59.90",
    "69.00",
    "89.00",
    "99.00",
    "129.00",
    "159.00",
    "199.00",
    "249.00",
    "299.00",
    "399.00",
    "499.00",
    "699.00",
    "899.00",
    "1299.00",
    "1999.00",
    "2999.00",
    "4999.00",
]
MATERIALS = [
    "2026新品手册.pdf",
    "产品价格表.xlsx",
    "客户案例集.pdf",
    "新品介绍视频",
    "公众号文章:育儿指南",
    "直播回放",
    "会员权益说明",
    "门店地址导航",
    "安装教程视频",
    "优惠活动海报",
]
MESSAGES = [
    "请问这个价格能便宜点吗",
    "价格太贵了，有没有优惠",
    "你好，什么时候发货",
    "收到了，谢谢",
    "这个有现货吗",
    "批量采购价格怎么算",
    "可以开发票吗",
    "好的，我考虑一下",
    "有没有更大的尺寸",
    "上次买的很好用，再来一单",
    "能发一下最新的价格表吗",
    "退货怎么操作",
    "周末门店营业吗",
    "给我留一个名额",
    "和别家比价格没优势啊",
    "麻烦帮我查一下物流",
]
BROADCASTS = ["双十一预售开启", "会员日专享折扣", "新品上市通知", "618满减活动", "春节发货安排"]
REPLIES = ["报名", "已收到", "怎么参加", "有兴趣", "不需要了", "价格多少"]
GROUP_CHATS = [
    "VIP客户1群",
    "VIP客户2群",
    "宝妈交流群",
    "新品体验官",
    "华东客户福利群",
    "门店会员群",
]
OPPORTUNITY_STAGES = ["初步接触", "需求确认", "方案报价", "商务谈判", "赢单"]
CHANNELS = ["小程序", "门店", "天猫旗舰店", "京东自营", "企业微信"]
# (gender, age band) combinations for the attributes JSON.
GENDERS = ["女", "男"]
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55+"]
MEMBER_LEVELS = ["普通会员", "银卡", "金卡", "钻石卡"]
