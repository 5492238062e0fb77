/* test_log.c — log values in logfmt (log_value_encode, log_safe) and whole lines (log_msg), with hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/log.h"
#include "test_util.h"

/* Inverse of the encoding, as a logfmt reader would do it, strictly: false for anything a value of
 * ours may not look like (a raw control octet, a bare value with a space, '=', '"' or '\', a quote
 * left open, an unknown or cut escape). The octets go to out, their count to out_len. */
static bool decode(const char *enc, char *out, size_t *out_len)
{
	size_t len = strlen(enc), o = 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)enc[i] < 0x20 || enc[i] == 0x7f)
			return false;
	if (len == 0 || enc[0] != '"') {
		if (strpbrk(enc, " =\"\\") != NULL)
			return false;
		memcpy(out, enc, len);
		*out_len = len;
		return true;
	}
	if (len < 2 || enc[len - 1] != '"')
		return false;
	for (size_t i = 1; i < len - 1; i++) {
		char c = enc[i];
		if (c == '"')
			return false;
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		if (i + 1 >= len - 1)
			return false;
		c = enc[++i];
		if (c == '"' || c == '\\') {
			out[o++] = c;
		} else if (c == 'x' && i + 2 < len - 1) {
			unsigned v;
			char hex[3] = {enc[i + 1], enc[i + 2], '\0'};
			if (strspn(hex, "0123456789abcdef") != 2 || sscanf(hex, "%x", &v) != 1)
				return false;
			out[o++] = (char)v;
			i += 2;
		} else {
			return false;
		}
	}
	*out_len = o;
	return true;
}

static void expect(const char *in, size_t len, const char *want)
{
	char got[LOG_VALUE_SIZE(64)], shown[300];
	assert_true(len <= 64);
	memset(got, 'Z', sizeof(got));
	size_t n = log_value_encode(got, sizeof(got), in, len);
	if (strcmp(got, want) != 0)
		fail_msg("%s: got %s, want %s", test_escape(in, len, shown, sizeof(shown)), got, want);
	assert_int_equal(n, strlen(want));
	/* and it reads back as the same octets */
	char back[64];
	size_t blen;
	assert_true(decode(got, back, &blen));
	assert_int_equal(blen, len);
	assert_memory_equal(back, in, len);
}

/* a string literal with its length, NULs inside included */
#define EXPECT(lit, want) expect(lit, sizeof(lit) - 1, want)

static void test_plain(void **state)
{
	EXPECT("alice", "alice");
	EXPECT("demo@mailwerk.test", "demo@mailwerk.test");
	EXPECT("<a@b>", "<a@b>");
	EXPECT("TLSv1.3", "TLSv1.3");
	EXPECT("a'b/c:d;e,f{}[]()!?#$%&*+-~^|`", "a'b/c:d;e,f{}[]()!?#$%&*+-~^|`");
}

static void test_quoted(void **state)
{
	/* logfmt: empty, a space, '=' or '"' needs quotes; a backslash too, so that escapes are unambiguous */
	EXPECT("", "\"\"");
	EXPECT("no such domain", "\"no such domain\"");
	EXPECT(" ", "\" \"");
	EXPECT("a=b", "\"a=b\"");
	EXPECT("=", "\"=\"");
	EXPECT("say \"hi\"", "\"say \\\"hi\\\"\"");
	EXPECT("\"", "\"\\\"\"");
	EXPECT("a\\b", "\"a\\\\b\"");
	EXPECT("\\x41", "\"\\\\x41\"");
	EXPECT("\\", "\"\\\\\"");
	EXPECT("\"@x", "\"\\\"@x\"");
	/* a value that tries to look like more keys stays one value */
	EXPECT("alice event=forged level=error", "\"alice event=forged level=error\"");
	EXPECT("x\" event=\"forged", "\"x\\\" event=\\\"forged\"");
}

static void test_controls(void **state)
{
	EXPECT("a\r\nb", "\"a\\x0d\\x0ab\"");
	EXPECT("\n", "\"\\x0a\"");
	EXPECT("\r", "\"\\x0d\"");
	EXPECT("a\0b", "\"a\\x00b\"");
	EXPECT("\0", "\"\\x00\"");
	EXPECT("\t", "\"\\x09\"");
	EXPECT("\x1b[31mred", "\"\\x1b[31mred\"");
	EXPECT("\x7f", "\"\\x7f\"");
	EXPECT("\x01\x1f", "\"\\x01\\x1f\"");
	/* a whole forged line after a CRLF is inert */
	EXPECT("x\r\nts=2024-01-01T00:00:00.000Z level=error event=x",
	       "\"x\\x0d\\x0ats=2024-01-01T00:00:00.000Z level=error event=x\"");
	/* C1 controls (U+0080-U+009F, here CSI U+009B) are escaped octet by octet */
	EXPECT("\xc2\x9b" "2J", "\"\\xc2\\x9b2J\"");
	EXPECT("\xc2\x80", "\"\\xc2\\x80\"");
	/* every control octet, alone */
	for (int c = 0; c < 0x80; c++) {
		char in[1] = {(char)c}, out[16], want[16];
		log_value_encode(out, sizeof(out), in, 1);
		if (c < 0x20 || c == 0x7f)
			snprintf(want, sizeof(want), "\"\\x%02x\"", c);
		else if (c == '"' || c == '\\')
			snprintf(want, sizeof(want), "\"\\%c\"", c);
		else if (c == ' ' || c == '=')
			snprintf(want, sizeof(want), "\"%c\"", c);
		else
			snprintf(want, sizeof(want), "%c", c);
		assert_string_equal(out, want);
	}
}

static void test_utf8_valid(void **state)
{
	EXPECT("caf\xc3\xa9", "caf\xc3\xa9");
	EXPECT("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac");
	EXPECT("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");
	EXPECT("j\xc3\xb6rg@b\xc3\xbcro.example", "j\xc3\xb6rg@b\xc3\xbcro.example");
	/* the edges of each form: U+00A0, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF */
	EXPECT("\xc2\xa0\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
	       "\xc2\xa0\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
	/* UTF-8 with a space is quoted and kept */
	EXPECT("\xe6\x97\xa5 \xe6\x9c\xac", "\"\xe6\x97\xa5 \xe6\x9c\xac\"");
}

static void test_utf8_invalid(void **state)
{
	/* a continuation octet alone, and octets that never appear in UTF-8 */
	EXPECT("\x80", "\"\\x80\"");
	EXPECT("a\xbf", "\"a\\xbf\"");
	EXPECT("\xfe\xff", "\"\\xfe\\xff\"");
	EXPECT("\xf5\x80\x80\x80", "\"\\xf5\\x80\\x80\\x80\"");
	/* overlong forms of '/' and of NUL */
	EXPECT("\xc0\xaf", "\"\\xc0\\xaf\"");
	EXPECT("\xc1\xbf", "\"\\xc1\\xbf\"");
	EXPECT("\xe0\x80\xaf", "\"\\xe0\\x80\\xaf\"");
	EXPECT("\xe0\x9f\xbf", "\"\\xe0\\x9f\\xbf\"");
	EXPECT("\xf0\x80\x80\xaf", "\"\\xf0\\x80\\x80\\xaf\"");
	EXPECT("\xf0\x8f\xbf\xbf", "\"\\xf0\\x8f\\xbf\\xbf\"");
	EXPECT("\xc0\x80", "\"\\xc0\\x80\"");
	/* UTF-16 surrogates, alone and as a pair (CESU-8) */
	EXPECT("\xed\xa0\x80", "\"\\xed\\xa0\\x80\"");
	EXPECT("\xed\xbf\xbf", "\"\\xed\\xbf\\xbf\"");
	EXPECT("\xed\xa0\xbd\xed\xb8\x80", "\"\\xed\\xa0\\xbd\\xed\\xb8\\x80\"");
	/* above U+10FFFF */
	EXPECT("\xf4\x90\x80\x80", "\"\\xf4\\x90\\x80\\x80\"");
	/* cut short: at the end, and followed by ASCII or by a new lead octet */
	EXPECT("\xe6\x97", "\"\\xe6\\x97\"");
	EXPECT("\xf0\x9f\x98", "\"\\xf0\\x9f\\x98\"");
	EXPECT("\xc3", "\"\\xc3\"");
	EXPECT("\xe6\x97x", "\"\\xe6\\x97x\"");
	EXPECT("\xc3\xc3\xa9", "\"\\xc3\xc3\xa9\"");
	/* the valid character after a bad octet is kept */
	EXPECT("\xff\xc3\xa9", "\"\\xff\xc3\xa9\"");
}

/* Every destination size from 0 up: always NUL-terminated, never longer than the size, and what is
 * written is a whole value (quotes balanced, no escape or UTF-8 sequence cut) that reads back as a
 * prefix of the input, with "..." when something was left out. */
static void truncations(const char *in, size_t len)
{
	char full[LOG_VALUE_SIZE(64)], shown[300];
	assert_true(len <= 64);
	size_t flen = log_value_encode(full, sizeof(full), in, len);
	for (size_t size = 0; size <= flen + 1; size++) {
		char *got = malloc(size > 0 ? size : 1); /* exact size: ASan sees a write past it */
		assert_non_null(got);
		size_t n = log_value_encode(got, size, in, len);
		if (size == 0) {
			assert_int_equal(n, 0);
			free(got);
			continue;
		}
		assert_int_equal(strlen(got), n);
		assert_true(n < size);
		if (size > flen) {
			assert_string_equal(got, full);
			free(got);
			continue;
		}
		char back[64], want[64];
		size_t blen, wlen;
		if (!decode(got, back, &blen))
			fail_msg("%s in %zu octets: %s does not decode", test_escape(in, len, shown, sizeof(shown)), size, got);
		assert_true(decode(full, want, &wlen));
		/* cut short: the marker, unless even that does not fit */
		if (blen >= 3 && memcmp(back + blen - 3, "...", 3) == 0 && size >= 4 + (full[0] == '"' ? 2u : 0u))
			blen -= 3;
		else
			assert_true(size < 4 + (full[0] == '"' ? 2u : 0u));
		assert_true(blen <= len);
		assert_memory_equal(back, in, blen);
		/* and the same quoting as the whole value */
		assert_true(got[0] == '\0' || (got[0] == '"') == (full[0] == '"'));
		free(got);
	}
}

#define TRUNCATIONS(lit) truncations(lit, sizeof(lit) - 1)

static void test_truncation(void **state)
{
	TRUNCATIONS("alice");
	TRUNCATIONS("no such domain");
	TRUNCATIONS("a\r\nb\0c\x7f");
	TRUNCATIONS("\"\\\"\\");
	TRUNCATIONS("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
	TRUNCATIONS("\xff\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe6\x97");
	TRUNCATIONS("\xc2\x9b x=\"y\"");
	TRUNCATIONS("");

	char out[16];
	/* "..." and the closing quote always fit from 6 octets on */
	assert_int_equal(log_value_encode(out, 6, "hello world", 11), 5);
	assert_string_equal(out, "\"...\"");
	assert_int_equal(log_value_encode(out, 10, "hello world", 11), 9);
	assert_string_equal(out, "\"hell...\"");
	assert_int_equal(log_value_encode(out, 8, "abcdefghij", 10), 7);
	assert_string_equal(out, "abcd...");
	/* an escape is never split: one that does not fit is left out whole */
	assert_int_equal(log_value_encode(out, 12, "ab\r\n", 4), 11);
	assert_string_equal(out, "\"ab\\x0d...\"");
	assert_int_equal(log_value_encode(out, 11, "ab\r\n", 4), 7);
	assert_string_equal(out, "\"ab...\"");
	/* nor is a UTF-8 character */
	assert_int_equal(log_value_encode(out, 8, "abcd\xf0\x9f\x98\x80", 8), 7);
	assert_string_equal(out, "abcd...");
	/* too small for any value: an empty string, still terminated */
	out[0] = 'Z';
	assert_int_equal(log_value_encode(out, 1, "x", 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(log_value_encode(out, 2, "a b", 3), 0);
	assert_string_equal(out, "");
	assert_int_equal(log_value_encode(out, 3, "", 0), 2);
	assert_string_equal(out, "\"\"");
	/* the bound LOG_VALUE_SIZE always holds the whole value */
	char worst[LOG_VALUE_SIZE(8)];
	assert_int_equal(log_value_encode(worst, sizeof(worst), "\n\n\n\n\n\n\n\n", 8), sizeof(worst) - 1);
}

static void test_log_safe(void **state)
{
	char buf[32];
	assert_ptr_equal(log_safe(buf, sizeof(buf), "bob smith", 9), buf);
	assert_string_equal(buf, "\"bob smith\"");
	assert_string_equal(log_safe(buf, sizeof(buf), "bob", 3), "bob");
	/* the length counts, not the NUL */
	assert_string_equal(log_safe(buf, sizeof(buf), "a\0b", 3), "\"a\\x00b\"");
	assert_string_equal(log_safe(buf, sizeof(buf), "abc", 1), "a");
}

/* What log_msg writes to stderr while fn runs, NUL-terminated. */
static size_t capture(void (*fn)(void), char *out, size_t size)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	close(p[1]);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < size && (r = read(p[0], out + n, size - 1 - n)) > 0)
		n += (size_t)r;
	close(p[0]);
	out[n] = '\0';
	return n;
}

static void log_hostile(void)
{
	char user[64];
	const char evil[] = "bob\r\nts=x level=error event=forged\0tail";
	log_info("event=login user=%s", log_safe(user, sizeof(user), evil, sizeof(evil) - 1));
	/* a caller that forgot log_safe still cannot split the line */
	log_warn("event=oops error=\"%s\"", "bad\r\nevent=forged \x1b[2J \xff\xc0\xaf");
}

static void test_log_line(void **state)
{
	char out[8192];
	size_t n = capture(log_hostile, out, sizeof(out));
	assert_true(n > 0 && out[n - 1] == '\n');
	/* two lines, each one event, and nothing a terminal or a reader would act on */
	size_t lines = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];
		lines += c == '\n';
		assert_true(c == '\n' || (c >= 0x20 && c != 0x7f));
	}
	assert_int_equal(lines, 2);
	char *second = strchr(out, '\n') + 1;
	assert_non_null(strstr(out, " level=info event=login user=\"bob\\x0d\\x0ats=x level=error event=forged\\x00tail\"\n"));
	assert_non_null(strstr(second, " level=warn event=oops error=\"bad\\x0d\\x0aevent=forged "
				       "\\x1b[2J \\xff\\xc0\\xaf\"\n"));
	assert_int_equal(strncmp(out, "ts=", 3), 0);
	assert_int_equal(strncmp(second, "ts=", 3), 0);
}

static void log_long(void)
{
	char big[5000];
	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("event=long text=%s", big);
}

static void test_log_line_long(void **state)
{
	/* a line longer than the limit is cut, never after half an escape, and still ends in one newline */
	char out[8192];
	size_t n = capture(log_long, out, sizeof(out));
	assert_true(n > 100 && n <= 2048);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', n - 1));
	char *text = strstr(out, "text=");
	assert_non_null(text);
	size_t tlen = (size_t)(out + n - 1 - (text + 5));
	assert_int_equal(tlen % 4, 0);
	for (size_t i = 0; i < tlen; i += 4)
		assert_memory_equal(text + 5 + i, "\\x0a", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_quoted),
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_utf8_invalid),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_log_safe),
		cmocka_unit_test(test_log_line),
		cmocka_unit_test(test_log_line_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
