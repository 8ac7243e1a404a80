#if canImport(SwiftUI)
import ConsentKit
import SwiftUI
import UCAnywhereSampleKit

/// Onboarding until it is answered, then the settings and the contact search.
struct RootView: View {
    @Bindable var model: AppModel

    var body: some View {
        NavigationStack {
            Group {
                if model.onboarding.isDone {
                    List {
                        if let problem = model.storeProblem {
                            Section {
                                Label(problem, systemImage: "lock.trianglebadge.exclamationmark")
                                if model.canRecover {
                                    Button("Reset privacy choices") { Task { await model.recover() } }
                                }
                            }
                        }
                        NavigationLink("Privacy settings") { SettingsView(model: model.settings) }
                        NavigationLink("Find a contact") { ContactSearchView(lookup: model.contacts) }
                        Button("Send a test analytics event") { track() }
                    }
                } else {
                    OnboardingView(model: model.onboarding) { Task { await model.finishOnboarding() } }
                }
            }
            .navigationTitle("UCAnywhere")
        }
        .errorAlert($model.error)
    }

    private func track() {
        do {
            try model.analytics.track("settings_opened")
        } catch {
            model.error = UserFacingError("send the analytics event", error)
        }
    }
}

/// One question per consent category; "Continue" saves all answers in one batch.
struct OnboardingView: View {
    @Bindable var model: OnboardingModel
    let done: () -> Void

    var body: some View {
        Form {
            Section("May UCAnywhere use …") {
                ForEach(model.questions) { question in
                    Toggle(question.title, isOn: Binding(
                        get: { model.answers[question.id] ?? false },
                        set: { model.answers[question.id] = $0 }))
                }
            }
            Button("Continue", action: done)
        }
        .errorAlert($model.error)
    }
}

/// The privacy settings: each switch shows the category's status; flipping it records the decision.
struct SettingsView: View {
    @Bindable var model: SettingsScreenModel

    var body: some View {
        List(model.rows) { row in
            VStack(alignment: .leading) {
                if row.control == .fixed {
                    LabeledContent(row.title, value: "Required")
                } else {
                    Toggle(row.title, isOn: Binding(get: { row.isOn }, set: { isOn in Task { await model.set(row.id, isOn: isOn) } }))
                }
                if let note = row.note { Text(note).font(.footnote).foregroundStyle(.secondary) }
            }
        }
        .navigationTitle("Privacy")
        .onAppear { model.reload() }
        .errorAlert($model.error)
    }
}

/// A contact search gated by `contact_lookup`: a denial is shown with its reasons.
struct ContactSearchView: View {
    let lookup: ContactLookup
    @State private var query = ""
    @State private var names: [String] = []
    @State private var error: UserFacingError?

    var body: some View {
        List(names, id: \.self) { Text($0) }
            .searchable(text: $query)
            .onSubmit(of: .search) { search() }
            .navigationTitle("Contacts")
            .errorAlert($error)
    }

    private func search() {
        do {
            names = try lookup.search(query)
        } catch {
            names = []
            self.error = UserFacingError("search your contacts", error)
        }
    }
}

extension View {
    /// Shows `error` in an alert until dismissed.
    func errorAlert(_ error: Binding<UserFacingError?>) -> some View {
        alert("Something went wrong", isPresented: Binding(get: { error.wrappedValue != nil }, set: { if !$0 { error.wrappedValue = nil } })) {
            Button("OK", role: .cancel) { error.wrappedValue = nil }
        } message: {
            Text(error.wrappedValue?.description ?? "")
        }
    }
}
#endif
