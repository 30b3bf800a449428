// Tests for mask_pii: e-mail addresses, Chinese mobile numbers in their usual spellings,
// international and landline numbers, Chinese ID numbers only with a valid checksum, and plain
// numbers (years, prices, dates, versions) left alone.
#include <gtest/gtest.h>

#include <string>

#include "text/text.h"

namespace sluice::text {
namespace {

std::string masked(std::string s, size_t* count = nullptr) {
  const size_t n = mask_pii(s);
  if (count) *count = n;
  return s;
}

TEST(Pii, Emails) {
  EXPECT_EQ(masked("mail alice.smith+tag@mail.example.co.uk today"), "mail [EMAIL] today");
  EXPECT_EQ(masked("请联系 zhang_san@163.com。"), "请联系 [EMAIL]。");
  EXPECT_EQ(masked("邮箱：wang@example.cn，谢谢"), "邮箱：[EMAIL]，谢谢");
  EXPECT_EQ(masked("end of sentence bob@example.org."), "end of sentence [EMAIL].");
  EXPECT_EQ(masked("13800138000@qq.com"), "[EMAIL]");
  size_t n = 0;
  EXPECT_EQ(masked("a@b.io and c@d.io", &n), "[EMAIL] and [EMAIL]");
  EXPECT_EQ(n, 2u);
  // Not addresses.
  for (const char* s : {"@home", "user@localhost", "a@b.c", "price @ 5", "x@.com", "@@"}) {
    EXPECT_EQ(masked(s, &n), s) << s;
    EXPECT_EQ(n, 0u) << s;
  }
}

TEST(Pii, ChineseMobileNumbers) {
  EXPECT_EQ(masked("电话13800138000"), "电话[PHONE]");
  EXPECT_EQ(masked("call +86 138 0013 8000 now"), "call [PHONE] now");
  EXPECT_EQ(masked("+8613800138000"), "[PHONE]");
  EXPECT_EQ(masked("+86-138-0013-8000"), "[PHONE]");
  EXPECT_EQ(masked("（+86）13800138000"), "[PHONE]");
  EXPECT_EQ(masked("(+86) 138 0013 8000"), "[PHONE]");
  EXPECT_EQ(masked("138-0013-8000"), "[PHONE]");
  EXPECT_EQ(masked("138 0013 8000"), "[PHONE]");
  EXPECT_EQ(masked("0086 13800138000"), "[PHONE]");
  EXPECT_EQ(masked("8613800138000"), "[PHONE]");
  size_t n = 0;
  EXPECT_EQ(masked("13800138000 13900139000、15912345678", &n), "[PHONE] [PHONE]、[PHONE]");
  EXPECT_EQ(n, 3u);
  // Wrong second digit, wrong length, inside a longer number or word.
  for (const char* s : {"12800138000", "1380013800", "138001380001", "ID13800138000", "2013800138000"}) {
    EXPECT_EQ(masked(s), s) << s;
  }
}

TEST(Pii, InternationalAndLandlineNumbers) {
  EXPECT_EQ(masked("Tel: +1 415 555 2671."), "Tel: [PHONE].");
  EXPECT_EQ(masked("+44 20 7946 0958"), "[PHONE]");
  EXPECT_EQ(masked("北京 010-65529988"), "北京 [PHONE]");
  EXPECT_EQ(masked("(010) 6552 9988"), "[PHONE]");
  EXPECT_EQ(masked("0755-8888 9999"), "[PHONE]");
  EXPECT_EQ(masked("客服 400-810-8888"), "客服 [PHONE]");
  EXPECT_EQ(masked("(555) 123-4567"), "[PHONE]");
  EXPECT_EQ(masked("555.123.4567"), "[PHONE]");
  EXPECT_EQ(masked("+1 234"), "+1 234");  // too few digits
}

TEST(Pii, ChineseIdNumbersNeedAValidChecksum) {
  // 11010519491231002X and 440524188001010014 are the standard's published examples.
  size_t n = 0;
  EXPECT_EQ(masked("身份证号 11010519491231002X。", &n), "身份证号 [ID]。");
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(masked("11010519491231002x"), "[ID]");
  EXPECT_EQ(masked("ID 440524188001010014 ok"), "ID [ID] ok");
  // One digit changed: the checksum fails and the number stays.
  EXPECT_EQ(masked("身份证号 110105194912310021", &n), "身份证号 110105194912310021");
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(masked("440524188001010015"), "440524188001010015");
  // Part of a longer number.
  EXPECT_EQ(masked("1440524188001010014"), "1440524188001010014");
}

TEST(Pii, PlainNumbersAreNotMasked) {
  for (const char* s : {"In 2023 revenue was ¥1,299.00 and $12,345,678.90.", "日期 2024-01-15，时间 10:30:00",
                        "version 1.2.3.4", "IP 192.168.001.100", "order 1234567890", "共 100 200 3000 件",
                        "第 12 页", "3.14159265358979", "2023年12月31日"}) {
    size_t n = 0;
    EXPECT_EQ(masked(s, &n), s) << s;
    EXPECT_EQ(n, 0u) << s;
  }
}

TEST(Pii, MixedTextCountsEverySpan) {
  size_t n = 0;
  EXPECT_EQ(masked("张三，身份证 11010519491231002X，手机 +86 138 0013 8000，邮箱 zs@example.com。", &n),
            "张三，身份证 [ID]，手机 [PHONE]，邮箱 [EMAIL]。");
  EXPECT_EQ(n, 3u);
}

}  // namespace
}  // namespace sluice::text
