package com.consentkit

/**
 * A data category of the policy, typed so that a category cannot be passed where a [Feature] is
 * expected (and the reverse): the mistake fails at compile time. The constants are the built-in
 * UCAnywhere catalog; another catalog's categories are `Category("its_id")`, and every
 * [ConsentManager] call also takes plain strings.
 */
@JvmInline
value class Category(val id: String) {
    override fun toString(): String = id

    /** The built-in UCAnywhere catalog's categories (`core/catalogs/ucanywhere.json`). */
    companion object {
        /** Account data (contract). */
        val USER_INFORMATION = Category("user_information")
        /** Contact details for service messages (legitimate interest). */
        val CONTACT_INFORMATION = Category("contact_information")
        /** Call and message metadata (contract). */
        val TRAFFIC_DATA = Category("traffic_data")
        /** The business directory (contract). */
        val BUSINESS_CONTACTS = Category("business_contacts")
        /** The device's address book (consent; OS permission: contacts). */
        val DEVICE_CONTACTS = Category("device_contacts")
        /** Photos and media (consent; OS permission: photos). */
        val PHOTOS_MEDIA = Category("photos_media")
        /** Anonymised usage statistics (consent). */
        val USAGE_STATISTICS = Category("usage_statistics")
        /** Chat content (contract). */
        val CHAT_INFORMATION = Category("chat_information")

        /** Every built-in category, in the catalog's order (Swift: `CategoryID.builtIn`). */
        val BUILT_IN: List<Category> =
            listOf(USER_INFORMATION, CONTACT_INFORMATION, TRAFFIC_DATA, BUSINESS_CONTACTS, DEVICE_CONTACTS, PHOTOS_MEDIA, USAGE_STATISTICS, CHAT_INFORMATION)
    }
}

/**
 * A gated feature of the policy, typed apart from [Category]. The constants are the built-in
 * UCAnywhere catalog; another catalog's features are `Feature("its_id")`.
 */
@JvmInline
value class Feature(val id: String) {
    override fun toString(): String = id

    /** The built-in UCAnywhere catalog's features. */
    companion object {
        /** Look up device contacts in the app (needs [Category.DEVICE_CONTACTS]). */
        val CONTACT_LOOKUP = Feature("contact_lookup")
        /** Sync one device contact to the server, per item (needs a scoped [Category.DEVICE_CONTACTS] grant). */
        val CONTACT_SYNC = Feature("contact_sync")
        /** Share photos and media (needs [Category.PHOTOS_MEDIA]). */
        val PHOTO_SHARING = Feature("photo_sharing")
        /** Send anonymised usage statistics (needs [Category.USAGE_STATISTICS]). */
        val USAGE_ANALYTICS = Feature("usage_analytics")
        /** Make and receive calls (contract). */
        val CALLING = Feature("calling")
        /** Chat (contract). */
        val MESSAGING = Feature("messaging")
        /** Browse the business directory (contract). */
        val BUSINESS_DIRECTORY = Feature("business_directory")

        /** Every built-in feature, in the catalog's order (Swift: `FeatureID.builtIn`). */
        val BUILT_IN: List<Feature> = listOf(CONTACT_LOOKUP, CONTACT_SYNC, PHOTO_SHARING, USAGE_ANALYTICS, CALLING, MESSAGING, BUSINESS_DIRECTORY)
    }
}

/** This status's category as a typed [Category] (Swift: `CategoryStatus.categoryID`). */
val CategoryStatus.categoryId: Category get() = Category(category)

/** This change's category as a typed [Category] (Swift: `StatusChange.categoryID`). */
val StatusChange.categoryId: Category get() = Category(category)

/** The OS permission of an OS permission event, typed; null for a consent event (Swift: `Receipt.osPermission`). */
val Receipt.osPermission: OsPermission? get() = permission?.let(::OsPermission)
