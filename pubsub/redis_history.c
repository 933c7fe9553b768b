/*
 * redis_history.c: the Lua scripts that keep topics' history in Redis, and the decoders of
 * what Redis answers. See redis_history.h.
 */
#include "redis_history.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "history.h"

_Static_assert(PS_RH_TOP_ELEMENTS == 3 + 2 * (size_t)PS_HISTORY_MAX_CAPACITY,
               "a read of a whole history must fit the reader's bound");

/*
 * KEYS[1] the epoch hash, KEYS[2] the stream; ARGV[1] the epoch to take if a new one is
 * needed, ARGV[2] the topic's history (MAXLEN), ARGV[3] its ttl in ms (0: none), ARGV[4]
 * the message after its head ("topic":...,"data":...}), ARGV[5] the channel. Answers the
 * offset given.
 *
 * Stream ids are the offsets ("<offset>-0"), so a position is an id and XRANGE reads from
 * it; the ttl cannot be a MINID of times, so each entry carries Redis' clock (t) and the
 * script trims what is older (at most 16 entries a publish, the rest on later ones; reads
 * filter by t as well, so a message past its ttl is never answered). With a ttl both keys
 * expire 10 minutes after it, unused, as an idle topic's state does in one process.
 */
const char ps_redis_history_publish_lua[] =
    "local epoch = redis.call('HGET', KEYS[1], 'epoch')\n"
    "if epoch and tonumber(redis.call('HGET', KEYS[1], 'offset') or '0') > 0\n"
    "   and redis.call('EXISTS', KEYS[2]) == 0 then\n"
    "  epoch = false\n"
    "end\n"
    "if not epoch then\n"
    "  epoch = ARGV[1]\n"
    "  redis.call('DEL', KEYS[2])\n"
    "  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)\n"
    "end\n"
    "local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local id = string.format('%d-0', offset)\n"
    "local msg = '{\"epoch\":\"' .. epoch .. '\",\"offset\":' .. string.format('%d', offset)\n"
    "            .. ',' .. ARGV[4]\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], id, 'd', msg, 't', now)\n"
    "local ttl = tonumber(ARGV[3])\n"
    "if ttl > 0 then\n"
    "  local old = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 16)\n"
    "  local keep = nil\n"
    "  for _, e in ipairs(old) do\n"
    "    if tonumber(e[2][4]) >= now - ttl then keep = e[1] break end\n"
    "  end\n"
    "  if not keep then\n"
    "    keep = string.format('%d-0', tonumber(string.match(old[#old][1], '^(%d+)')) + 1)\n"
    "  end\n"
    "  redis.call('XTRIM', KEYS[2], 'MINID', keep)\n"
    "  redis.call('PEXPIRE', KEYS[1], ttl + 600000)\n"
    "  redis.call('PEXPIRE', KEYS[2], ttl + 600000)\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[5], msg)\n"
    "return offset\n";

/*
 * KEYS as above; ARGV[1] '1' to create the epoch when there is none (a subscribe: the
 * client must learn one) or '0' (a read), ARGV[2] the epoch to create, ARGV[3] the mode:
 * 's' after a position, 'l' the newest ARGV[6], 'a' all; ARGV[4], ARGV[5] the position's
 * epoch and offset; ARGV[6] a limit (0: none; for 'l', how many); ARGV[7] the ttl in ms.
 * Answers {status, epoch, last offset, offset, message, offset, message, ...}.
 */
const char ps_redis_history_read_lua[] =
    "local epoch = redis.call('HGET', KEYS[1], 'epoch')\n"
    "local last = tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')\n"
    "local ttl = tonumber(ARGV[7])\n"
    "if epoch and last > 0 and redis.call('EXISTS', KEYS[2]) == 0 then epoch = false end\n"
    "if not epoch then\n"
    "  if ARGV[1] ~= '1' then return {2, '', 0} end\n"
    "  epoch = ARGV[2]\n"
    "  last = 0\n"
    "  redis.call('DEL', KEYS[2])\n"
    "  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)\n"
    "  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl + 600000) end\n"
    "end\n"
    "local cutoff = -1\n"
    "if ttl > 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - ttl\n"
    "end\n"
    "local out = {0, epoch, last}\n"
    "local limit = tonumber(ARGV[6])\n"
    "local r\n"
    "if ARGV[3] == 's' then\n"
    "  local since = tonumber(ARGV[5])\n"
    "  if ARGV[4] ~= epoch or since > last then out[1] = 1 return out end\n"
    "  if since == last then return out end\n"
    "  local from = string.format('%d-0', since + 1)\n"
    "  if limit > 0 then\n"
    "    r = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', limit)\n"
    "  else\n"
    "    r = redis.call('XRANGE', KEYS[2], from, '+')\n"
    "  end\n"
    "  if #r == 0 or r[1][1] ~= from or tonumber(r[1][2][4]) < cutoff then\n"
    "    out[1] = 1\n"
    "    return out\n"
    "  end\n"
    "elseif ARGV[3] == 'l' then\n"
    "  if limit == 0 then return out end\n"
    "  local rev = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)\n"
    "  r = {}\n"
    "  for i = #rev, 1, -1 do r[#r + 1] = rev[i] end\n"
    "else\n"
    "  r = redis.call('XRANGE', KEYS[2], '-', '+')\n"
    "end\n"
    "for _, e in ipairs(r) do\n"
    "  if tonumber(e[2][4]) >= cutoff then\n"
    "    out[#out + 1] = tonumber(string.match(e[1], '^(%d+)'))\n"
    "    out[#out + 1] = e[2][2]\n"
    "  end\n"
    "end\n"
    "return out\n";

static int epoch_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '.';
}

int ps_rh_head_parse(const char *p, size_t n, ps_rh_head *out)
{
    static const char start[] = "{\"epoch\":\"", middle[] = "\",\"offset\":";
    size_t i = sizeof(start) - 1, e;
    uint64_t v = 0;

    if (n < i || memcmp(p, start, i))
        return -1;
    e = i;
    while (i < n && i - e < PS_RH_EPOCH_MAX && epoch_char(p[i]))
        i++;
    if (i == e || i - e >= PS_RH_EPOCH_MAX)
        return -1;
    out->epoch = p + e;
    out->epoch_len = i - e;
    if (n - i < sizeof(middle) - 1 || memcmp(p + i, middle, sizeof(middle) - 1))
        return -1;
    i += sizeof(middle) - 1;
    size_t digits = i;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        i++;
    }
    /* No leading zero, nothing but digits, then the comma the rest follows. */
    if (i == digits || (p[digits] == '0' && i - digits > 1) || v == 0 || i >= n || p[i] != ',')
        return -1;
    out->offset = v;
    return 0;
}

void ps_rh_result_free(ps_rh_result *res)
{
    free(res->entries);
    res->entries = NULL;
    res->n = 0;
}

static int bad(ps_rh_result *out)
{
    ps_rh_result_free(out);
    return -EPROTO;
}

int ps_rh_decode(const redisReply *r, ps_rh_result *out)
{
    memset(out, 0, sizeof(*out));
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        (r->elements - 3) % 2 != 0)
        return -EPROTO;
    const redisReply *st = r->element[0], *ep = r->element[1], *last = r->element[2];
    if (st->type != REDIS_REPLY_INTEGER || st->integer < PS_RH_OK || st->integer > PS_RH_NONE ||
        ep->type != REDIS_REPLY_STRING || last->type != REDIS_REPLY_INTEGER || last->integer < 0)
        return -EPROTO;
    out->status = (int)st->integer;
    /* An epoch is what the scripts were given: [0-9a-z.], 1..31 bytes; none only for NONE. */
    if (ep->len >= PS_RH_EPOCH_MAX || (ep->len == 0) != (out->status == PS_RH_NONE))
        return -EPROTO;
    for (size_t i = 0; i < ep->len; i++)
        if (!epoch_char(ep->str[i]))
            return -EPROTO;
    memcpy(out->epoch, ep->str, ep->len);
    out->epoch[ep->len] = '\0';
    out->last = (uint64_t)last->integer;
    size_t n = (r->elements - 3) / 2;
    if (n == 0)
        return 0;
    if (out->status != PS_RH_OK)
        return bad(out);
    out->entries = calloc(n, sizeof(*out->entries));
    if (out->entries == NULL)
        return -ENOMEM;
    uint64_t prev = 0;
    for (size_t k = 0; k < n; k++) {
        const redisReply *off = r->element[3 + 2 * k], *msg = r->element[4 + 2 * k];
        ps_rh_head head;
        if (off->type != REDIS_REPLY_INTEGER || off->integer <= 0 ||
            (uint64_t)off->integer <= prev || (uint64_t)off->integer > out->last ||
            msg->type != REDIS_REPLY_STRING)
            return bad(out);
        /* What a browser is sent must be text; and it must be the message it says it is. */
        if (ps_rh_head_parse(msg->str, msg->len, &head) || head.offset != (uint64_t)off->integer ||
            head.epoch_len != ep->len || memcmp(head.epoch, ep->str, ep->len) ||
            !ps_utf8_valid((const unsigned char *)msg->str, msg->len))
            return bad(out);
        prev = (uint64_t)off->integer;
        out->entries[k].offset = prev;
        out->entries[k].data = msg->str;
        out->entries[k].len = msg->len;
        out->n++;
    }
    return 0;
}

/* hiredis' default reply functions, with createArray bounded. Every reader starts with the
 * same default table, so one bounded copy serves them all. */
#if defined(HIREDIS_MAJOR) && HIREDIS_MAJOR >= 1
typedef size_t claimed_elements;
#define CLAIM_OVER(n, bound) ((n) > (bound))
#else
typedef int claimed_elements;
#define CLAIM_OVER(n, bound) ((n) < 0 || (size_t)(n) > (bound))
#endif

static redisReplyObjectFunctions bounded_functions;
static void *(*default_create_array)(const redisReadTask *, claimed_elements);
static pthread_once_t bounded_once = PTHREAD_ONCE_INIT;
static const redisReplyObjectFunctions *bounded_from;

static void *bounded_create_array(const redisReadTask *task, claimed_elements elements)
{
    size_t bound = task->parent == NULL ? PS_RH_TOP_ELEMENTS : PS_RH_NESTED_ELEMENTS;

    if (CLAIM_OVER(elements, bound))
        return NULL;
    return default_create_array(task, elements);
}

static void make_bounded_functions(void)
{
    bounded_functions = *bounded_from;
    default_create_array = bounded_from->createArray;
    bounded_functions.createArray = bounded_create_array;
}

void ps_rh_bound_reader(redisReader *reader)
{
    if (reader->fn == &bounded_functions || reader->fn == NULL)
        return;
    bounded_from = reader->fn;
    pthread_once(&bounded_once, make_bounded_functions);
    reader->fn = &bounded_functions;
}
