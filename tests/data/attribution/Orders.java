// A Java order service for the attribution tests: it handles orders (each request allocates
// garbage and an Order) and, in "leak" mode, its OrderCache remembers every Order for ever; in
// "clean" mode the cache keeps the last 2,000 (bounded). Built with `javac --release 11
// Orders.java` (the tests need only a JRE and jcmd). Every GC_EVERY seconds it asks for a
// collection, so the live set after GC shows in a short test.
// Usage: java -cp DIR Orders clean|leak ORDERS_PER_SECOND GC_EVERY
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

public class Orders {
    static long sink;

    public static void main(String[] args) throws Exception {
        boolean leak = args[0].equals("leak");
        int perSecond = Integer.parseInt(args[1]);
        double gcEvery = Double.parseDouble(args[2]);
        long lastGc = System.nanoTime();
        OrderCache cache = new OrderCache(leak ? Integer.MAX_VALUE : 2000);
        long id = 0;
        while (true) {
            long t0 = System.nanoTime();
            for (int k = 0; k < perSecond / 10; k++) {
                byte[] scratch = new byte[4096];
                scratch[k % 4096] = 1;
                sink += scratch.length;
                cache.remember(new Order(id++, k, 3 * k));
            }
            if ((System.nanoTime() - lastGc) / 1e9 >= gcEvery) {
                System.gc();
                lastGc = System.nanoTime();
            }
            long left = 100_000_000L - (System.nanoTime() - t0);
            if (left > 0) {
                Thread.sleep(left / 1_000_000L);
            }
        }
    }
}

/** One order: a few numbers, 72 bytes on a 64-bit JVM. */
class Order {
    final long id;
    final long customer;
    final long amountCents;
    final long createdNanos = System.nanoTime();
    final long a1;
    final long a2;
    final long a3;

    Order(long id, long customer, long amountCents) {
        this.id = id;
        this.customer = customer;
        this.amountCents = amountCents;
        this.a1 = id ^ customer;
        this.a2 = id * 31;
        this.a3 = amountCents + 7;
    }
}

/** Remembers recent orders; with an unbounded limit, every order for ever (the leak). */
class OrderCache {
    private final int limit;
    private final ArrayDeque<Order> recent = new ArrayDeque<>();
    private final List<Order> all = new ArrayList<>();

    OrderCache(int limit) {
        this.limit = limit;
    }

    void remember(Order o) {
        if (limit == Integer.MAX_VALUE) {
            all.add(o);
            return;
        }
        recent.addLast(o);
        if (recent.size() > limit) {
            recent.removeFirst();
        }
    }
}
