/*
 * Tollgate's token protocol (docs/protocol.md), modelled for Spin.
 * Assumptions and how to run the checks: model/README.md.
 *
 * One logical signal crosses two hops:
 *   Edge --q[0]--> Receiver 0 | Receiver 1 (competing) --q[1]--> Receiver 2 (downstream)
 * The edge mints token T1 and publishes it; the receiver whose commit consumes T1 applies the state change
 * (`applied`) and mints the outgoing token in the same transaction; the downstream receiver consumes that
 * token the same way (`applied2`). The relay re-dispatches tokens left pending, the broker duplicates and
 * reorders copies and redelivers unacked ones, and every process may crash at every step. With -DGC a janitor
 * also deletes consumed tombstones at any time.
 *
 * Bug switches (spin -a -D<NAME>), each of which must make the check fail:
 *   ACK_BEFORE_COMMIT       a receiver acks the incoming message before its commit
 *   DISPATCH_BEFORE_COMMIT  a receiver mints and dispatches the outgoing signal before its commit
 *   UNCONDITIONAL_CONSUME   the commit consumes the incoming token without the "exists, not consumed" condition
 *   BLIND_MARK              marking a token dispatched does not check that it is still pending
 *   NO_RELAY                no relay: a token left pending by a crash is never dispatched
 */

#ifndef MAXCRASH
#define MAXCRASH 2 /* crashes in a whole run (edge, receivers, downstream): finitely many */
#endif
#ifndef MAXDUP
#define MAXDUP 2 /* copies the broker may duplicate in a whole run */
#endif
#ifndef CAP
#define CAP 3 /* broker capacity per queue: ready copies + unacked copies */
#endif
#define MAXTOK 4 /* token ids 1..MAXTOK-1; 0 is "no token" */

/* token status in the store; ABSENT = never minted, or a tombstone deleted after consumption */
#define ABSENT 0
#define PENDING 1
#define DISPATCHED 2
#define CONSUMED 3

#define T1 1 /* the edge's token; the tokens minted by the receivers get ids 2, 3, ... */

byte status[MAXTOK];
byte next_id = 2; /* fresh ids: a real token id is 128-bit random, never reused */
byte applied;     /* state change of hop 1 */
byte applied2;    /* state change of the downstream hop */
byte minted2;     /* ghost: tokens minted by hop-1 receivers */
byte crashes;
byte dups;

chan q[2] = [CAP] of { byte }; /* ready copies: q[0] edge -> hop 1, q[1] hop 1 -> downstream */
byte held[3];                  /* the unacked copy each receiver holds (0 = none) */

#define LIVE(t) (status[t] == PENDING || status[t] == DISPATCHED)
#define HOLDING(h) ((h) == 0 -> (held[0] != 0) + (held[1] != 0) : (held[2] != 0))
#define ROOM(h) (len(q[h]) + HOLDING(h) < CAP)

#ifdef UNCONDITIONAL_CONSUME
#define COMMIT_COND(t) true
#else
#define COMMIT_COND(t) LIVE(t)
#endif

#ifdef BLIND_MARK
#define MARK_DISPATCHED(t) status[t] = DISPATCHED
#else
#define MARK_DISPATCHED(t) if :: status[t] == PENDING -> status[t] = DISPATCHED :: else fi
#endif

/* Everything minted was consumed exactly once and nothing is left in flight. */
#define SETTLED (applied == 1 && applied2 == 1 && minted2 == 1 && !LIVE(1) && !LIVE(2) && !LIVE(3))

/*
 * A crash (kill -9) of a receiver, offered as an alternative to its next step: its volatile state is lost, the
 * broker requeues its unacked copy, and the worker restarts. Requeueing never blocks: every publish leaves room
 * for the unacked copies (ROOM).
 */
#define CRASH \
  atomic { \
    crashes < MAXCRASH -> crashes++; \
    if \
    :: held[me] != 0 -> q[h]!held[me]; held[me] = 0 \
    :: else \
    fi; \
    m = 0; out = 0 \
  }; \
  goto restart

/* me: 0 and 1 compete on hop 1 (h = 0), 2 is the downstream receiver (h = 1). */
proctype Receiver(byte me; byte h) {
  byte m;   /* incoming token id */
  byte out; /* outgoing token id, once minted */
restart:
end:
  do
  :: atomic { q[h]?m -> held[me] = m }; /* delivered, unacked */
     if
     :: CRASH                           /* after receive */
     :: !LIVE(m) -> goto ack            /* cheap check: absent or consumed -> drop */
     :: LIVE(m)                         /* (not `else`: that would exclude the crash) */
     fi;
#ifdef ACK_BEFORE_COMMIT
     if
     :: CRASH
     :: held[me] = 0                    /* BUG: ack before commit */
     fi;
#endif
#ifdef DISPATCH_BEFORE_COMMIT
     if
     :: h == 0 ->                       /* BUG: mint and dispatch before commit */
        if
        :: CRASH
        :: d_step { next_id < MAXTOK -> out = next_id; next_id++; status[out] = PENDING; minted2++ }
        fi;
        if
        :: CRASH
        :: atomic { ROOM(1) -> q[1]!out }
        fi
     :: else
     fi;
#endif
     if
     :: CRASH                           /* after the cheap check */
     :: d_step {                        /* the one transaction: consume + state change + mint */
          if
          :: COMMIT_COND(m) ->
             status[m] = CONSUMED;
             if
             :: h == 0 ->
                applied++;
#ifndef DISPATCH_BEFORE_COMMIT
                out = next_id; next_id++; status[out] = PENDING; minted2++;
#endif
                assert(applied <= 1)
             :: else ->
                applied2++;
                assert(applied2 <= 1);
                assert(applied == 1)    /* causal order: the cause committed before its effect */
             fi
          :: else                       /* a concurrent copy won: drop */
          fi
        }
     fi;
     if
     :: out == 0 -> goto ack            /* nothing to dispatch (downstream hop, or lost the race) */
     :: else
     fi;
#ifndef DISPATCH_BEFORE_COMMIT
     if
     :: CRASH                           /* after commit: the outgoing token stays pending */
     :: atomic { ROOM(1) -> q[1]!out }  /* dispatch (publisher confirm) */
     fi;
#endif
     if
     :: CRASH                           /* after dispatch, before marking */
     :: d_step { MARK_DISPATCHED(out) }
     fi;
ack:
     if
     :: CRASH                           /* after marking dispatched, before ack */
     :: atomic { held[me] = 0; m = 0; out = 0 } /* ack (or drop) */
     fi
  od
}

/* The edge (HTTP ingress) mints before it emits, and may crash after minting or after publishing. */
active proctype Edge() {
  d_step { status[T1] = PENDING };
  if
  :: atomic { crashes < MAXCRASH -> crashes++ } /* crash after minting: the relay publishes */
  :: atomic { ROOM(0) -> q[0]!T1 };             /* publish; the broker confirms */
     if
     :: atomic { crashes < MAXCRASH -> crashes++ }
     :: d_step { MARK_DISPATCHED(T1) }
     fi
  fi
}

/*
 * The relay re-dispatches any pending token, with no delay modelled: it may race the normal dispatch and send
 * duplicates. Sending and marking are one step here (marking is conditional, so its moment only matters to the
 * relay itself); "crashed or lost its lease before marking" leaves the token pending, to be sent again.
 */
#ifndef NO_RELAY
#define RELAY(t, h) \
  atomic { \
    status[t] == PENDING && ROOM(h) -> q[h]!t; \
    if \
    :: MARK_DISPATCHED(t) \
    :: true \
    fi \
  }
active proctype Relay() {
end:
  do
  :: RELAY(1, 0)
  :: RELAY(2, 1)
  :: RELAY(3, 1)
  od
}
#endif

/* The broker: duplicates copies (bounded) and reorders them (moves the head to the tail). */
active proctype Broker() {
  byte m;
end:
  do
  :: atomic { dups < MAXDUP && len(q[0]) > 0 && ROOM(0) -> q[0]?<m>; q[0]!m; dups++; m = 0 }
  :: atomic { dups < MAXDUP && len(q[1]) > 0 && ROOM(1) -> q[1]?<m>; q[1]!m; dups++; m = 0 }
  :: atomic { len(q[0]) > 1 -> q[0]?m; q[0]!m; m = 0 }
  :: atomic { len(q[1]) > 1 -> q[1]?m; q[1]!m; m = 0 }
  od
}

/*
 * With -DGC: consumed tombstones may be deleted at any time; an absent token is still "no token, no effect".
 * (Off by default: it triples the state space, and receivers treat absent and consumed alike.)
 */
#ifdef GC
active proctype Janitor() {
end:
  do
  :: d_step { status[1] == CONSUMED -> status[1] = ABSENT }
  :: d_step { status[2] == CONSUMED -> status[2] = ABSENT }
  :: d_step { status[3] == CONSUMED -> status[3] = ABSENT }
  od
}
#endif

/* When nothing can move any more, every minted token must have been consumed exactly once. */
active proctype Quiescence() {
  timeout -> assert(SETTLED)
}

init {
  atomic {
    run Receiver(0, 0);
    run Receiver(1, 0);
    run Receiver(2, 1)
  }
}

ltl live1 { <> (applied == 1) }
ltl live2 { <> (applied2 == 1) }
ltl settled { <> SETTLED }
